"""Checkr's webhook events: parse one, and hand the check it concerns a fresh read of the provider.

An event is never believed as it came: its only use is to say *which* check changed. The check is
then re-read from the provider's API (``CheckrProvider.read``) and that read is signalled to the
check's workflow, so a replayed or reordered event can only cause a harmless re-read. Events are
deduplicated by id (``screening_events``); one that failed half-way (the provider or Temporal was
unreachable) is not marked handled, so Checkr's retry completes it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from temporalio.client import Client

from adapters.checkr import ScreeningProvider
from adapters.http_endpoint import json_body
from adapters.screening_store import ScreeningStore
from adapters.updates import signal_if_running
from domain.bounds import nested_deeper_than
from domain.screening import SCREENING_SIGNAL, ProviderSnapshot

log = logging.getLogger("checkr.webhook")

MAX_DEPTH = 32
"""Checkr's events (with ``include_object``) nest a few levels; deeper is not Checkr."""
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TYPE = re.compile(r"^[a-z_]{1,30}\.[a-z_.]{1,33}$")
ROUTED_OBJECTS = frozenset({"report", "invitation", "candidate"})


class MalformedBody(ValueError):
    """Not JSON, not an object, or nested too deeply: the whole post is a bad request."""


@dataclass(frozen=True)
class ProviderEvent:
    event_id: str
    type: str
    candidate_id: str | None
    """The candidate the event concerns (None: not an event about a check, e.g. an account event)."""
    object_id: str | None


class UnusableEvent(ValueError):
    """A well-formed JSON body that is not an event we can route: ignored (answered 200), described
    without its content."""


def parse_event(body: bytes) -> ProviderEvent:
    """MalformedBody for a bad body; UnusableEvent for JSON that is not a routable event."""
    try:
        data = json_body(body)
    except ValueError as error:
        raise MalformedBody(str(error)) from None
    if not isinstance(data, dict):
        raise MalformedBody("the body is not a JSON object")
    if nested_deeper_than(data, MAX_DEPTH):
        raise MalformedBody(f"the body nests deeper than {MAX_DEPTH} levels")
    event_id, kind = data.get("id"), data.get("type")
    if not isinstance(event_id, str) or not _ID.match(event_id):
        raise UnusableEvent("the event has no usable id")
    if not isinstance(kind, str) or not _TYPE.match(kind):
        raise UnusableEvent(f"event {event_id}: no usable type")
    container = data.get("data")
    obj: Any = container.get("object") if isinstance(container, dict) else None
    if not isinstance(obj, dict):
        raise UnusableEvent(f"event {event_id}: no data.object")
    object_kind = obj.get("object")
    object_id = obj.get("id") if isinstance(obj.get("id"), str) and _ID.match(obj["id"]) else None
    if object_kind not in ROUTED_OBJECTS:
        return ProviderEvent(event_id=event_id, type=kind, candidate_id=None, object_id=object_id)
    candidate = object_id if object_kind == "candidate" else obj.get("candidate_id")
    if not isinstance(candidate, str) or not _ID.match(candidate):
        raise UnusableEvent(f"event {event_id}: the {object_kind} names no usable candidate")
    return ProviderEvent(event_id=event_id, type=kind, candidate_id=candidate, object_id=object_id)


class CheckNotifier(Protocol):
    async def notify(self, check_workflow_id: str, snapshot: ProviderSnapshot) -> bool:
        """Signal the check; False when it is no longer running."""
        ...


class WorkflowSignalNotifier:
    def __init__(self, client: Client) -> None:
        self._client = client

    async def notify(self, check_workflow_id: str, snapshot: ProviderSnapshot) -> bool:
        """False when the check has finished (or was cancelled)."""
        return await signal_if_running(self._client, check_workflow_id, SCREENING_SIGNAL, snapshot)


@dataclass(frozen=True)
class Handled:
    outcome: str
    """``duplicate``, ``no check``, ``not a check event`` or ``signalled N``."""


class ProviderEventProcessor:
    def __init__(
        self, provider: ScreeningProvider, store: ScreeningStore, notifier: CheckNotifier, provider_name: str = "checkr"
    ) -> None:
        self._provider = provider
        self._store = store
        self._notifier = notifier
        self._name = provider_name

    async def handle(self, event: ProviderEvent) -> Handled:
        """Raises when the provider, the database or Temporal failed: the event stays unhandled."""
        if await self._store.claim_event(self._name, event.event_id, event.type, event.object_id) == "handled":
            return Handled("duplicate")
        if event.candidate_id is None:
            outcome = "not a check event"
        else:
            checks = await self._store.checks_of_candidate(self._name, event.candidate_id)
            signalled = 0
            for check_workflow_id, invitation_id in checks:
                known = ProviderSnapshot(candidate_id=event.candidate_id, invitation_id=invitation_id)
                fresh = await self._provider.read(known)  # never the event's word: the provider's, now
                signalled += await self._notifier.notify(check_workflow_id, fresh)
            outcome = f"signalled {signalled}" if checks else "no check"
        await self._store.event_handled(self._name, event.event_id, outcome)
        return Handled(outcome)
