"""SendGrid's Event Webhook: verify a post, record its delivery events, follow up on problems.

* Verification (Signed Event Webhook): SendGrid signs the bytes ``timestamp + raw body`` with ECDSA
  P-256 / SHA-256 and sends the base64 DER signature and the timestamp in the
  ``X-Twilio-Email-Event-Webhook-Signature`` and ``-Timestamp`` headers; the verification key is the
  account's public key, base64 DER. A post without them, with a bad signature, or signed too long
  ago (a replay) is refused before anything is read from it.
* Isolation (``adapters.sendgrid_post``): each event of a verified post stands alone. One that is
  malformed is rejected (counted in the answer, logged without its content, never stored) and the
  others are recorded, so SendGrid is not made to post the bad one again and again; should the
  database still refuse one, that event alone is rolled back (a savepoint) and reported.
* Recording: one row per ``sg_event_id`` (SendGrid posts at least once, so duplicates are normal),
  matched to the outbox row by the ``message_key`` custom arg SendGrid echoes in every event. A
  delivery event moves the row forward only (``domain.emails.states_before``): events arrive out of
  order and an old one never undoes a newer one.
* Follow-up of a bounce, block or drop: an admin alert and the ``email_delivery_problem`` signal to
  the engagement's workflow. A follow-up is marked done on the event row once both happened, so a
  post that SendGrid repeats after a failure (Temporal unreachable) completes it, and a duplicate
  of a finished one changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.client import Client

from adapters.alerts import AlertStore
from adapters.db import PostgresStore
from adapters.db_schema import email_events, email_outbox
from adapters.outbox import advance

# The post's parts live in adapters.sendgrid_post; callers may keep importing them from here.
from adapters.sendgrid_post import DeliveryEvent as DeliveryEvent
from adapters.sendgrid_post import ParsedPost as ParsedPost
from adapters.sendgrid_post import Rejection as Rejection
from adapters.sendgrid_post import parse_post as parse_post
from adapters.updates import signal_if_running
from domain.delivery import event_state
from domain.state import DeliveryProblem

log = logging.getLogger("sendgrid.events")

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DELIVERY_PROBLEM_SIGNAL = "email_delivery_problem"
"""The engagement workflow's signal for a message that will not arrive (payload: DeliveryProblem)."""


# ---------------------------------------------------------------- verification


class SignatureRejected(Exception):
    """The post is not provably from SendGrid; ``unsigned`` when the signature headers are missing."""

    def __init__(self, reason: str, *, unsigned: bool = False) -> None:
        super().__init__(reason)
        self.unsigned = unsigned


def load_verification_key(key: str) -> ec.EllipticCurvePublicKey:
    """The Signed Event Webhook's public key: base64 DER as SendGrid shows it (PEM is accepted too)."""
    text = key.strip()
    try:
        loaded = (
            load_pem_public_key(text.encode())
            if text.startswith("-----BEGIN")
            else load_der_public_key(base64.b64decode(text, validate=True))
        )
    except (ValueError, binascii.Error) as error:
        raise ValueError(f"not a public key in base64 DER or PEM: {error}") from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(loaded.curve, ec.SECP256R1):
        raise ValueError("the Event Webhook verification key must be an ECDSA P-256 public key")
    return loaded


class SignatureVerifier:
    def __init__(
        self, public_key: str, *, max_age: timedelta = timedelta(minutes=10), clock: Callable[[], float] = time.time
    ) -> None:
        self._key = load_verification_key(public_key)
        self._max_age = max_age.total_seconds()
        self._clock = clock

    def verify(self, body: bytes, signature: str | None, timestamp: str | None) -> None:
        """Raise SignatureRejected unless ``signature`` signs ``timestamp + body`` and is recent."""
        if not signature or not timestamp:
            raise SignatureRejected("the signature headers are missing", unsigned=True)
        if not timestamp.isdigit():
            raise SignatureRejected("the signature timestamp is not a Unix time")
        age = self._clock() - int(timestamp)
        if abs(age) > self._max_age:
            raise SignatureRejected(f"the signature timestamp is {age:.0f} s away from now")
        try:
            decoded = base64.b64decode(signature, validate=True)
            self._key.verify(decoded, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            raise SignatureRejected("the signature does not match the body and timestamp") from None


# ---------------------------------------------------------------- storage


@dataclass(frozen=True)
class RecordReport:
    recorded: int
    duplicates: int
    refused: list[str]
    """sg_event_ids of events the database refused (a value it cannot hold): not recorded."""


@dataclass(frozen=True)
class PendingFollowUp:
    sg_event_id: str
    problem: DeliveryProblem | None
    """None when the event matches no message of ours."""
    engagement_id: str | None


class DeliveryEventStore(PostgresStore):
    async def record(self, events: Sequence[DeliveryEvent]) -> RecordReport:
        """Record each event once and move its message forward, in one transaction; an event the
        database refuses (a value it cannot hold) is rolled back alone and reported, not the post."""
        recorded, refused = 0, []
        async with self._engine.begin() as conn:
            for event in events:
                try:
                    async with conn.begin_nested():
                        recorded += await self._record_one(conn, event)
                except DBAPIError as error:
                    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
                    if not sqlstate.startswith("22"):  # not a data exception: the post fails, SendGrid retries
                        raise
                    log.warning("the database refused event %s (SQLSTATE %s)", event.sg_event_id, sqlstate)
                    refused.append(event.sg_event_id)
        return RecordReport(recorded=recorded, duplicates=len(events) - recorded - len(refused), refused=refused)

    async def _record_one(self, conn: AsyncConnection, event: DeliveryEvent) -> int:
        inserted = (
            await conn.execute(
                insert(email_events)
                .values(
                    sg_event_id=event.sg_event_id,
                    message_key=event.message_key,
                    sg_message_id=event.sg_message_id,
                    event=event.event[:30],
                    bounce_type=event.type[:20] if event.event == "bounce" and event.type else None,
                    recipient=event.email,
                    reason=event.reason or event.response,
                    occurred_at=event.occurred_at,
                    payload=event.raw(),
                )
                .on_conflict_do_nothing(index_elements=["sg_event_id"])
                .returning(email_events.c.event_id)
            )
        ).first()
        if inserted is None:
            return 0
        target = event_state(event.event, event.type)
        if event.message_key and target is not None:
            await advance(conn, event.message_key, target, last_event=event.event, last_event_at=event.occurred_at)
        return 1

    async def pending_follow_ups(self, sg_event_ids: Sequence[str]) -> list[PendingFollowUp]:
        """The problem events among these that were not followed up yet, with their message."""
        if not sg_event_ids:
            return []
        query = (
            select(
                email_events, email_outbox.c.engagement_id, email_outbox.c.kind, email_outbox.c.recipient.label("to")
            )
            .select_from(email_events.outerjoin(email_outbox, email_outbox.c.message_key == email_events.c.message_key))
            .where(email_events.c.sg_event_id.in_(list(sg_event_ids)))
            .where(email_events.c.followed_up_at.is_(None))
            .where(email_events.c.event.in_(["bounce", "dropped"]))
            .order_by(email_events.c.event_id)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        pending = []
        for row in rows:
            if row.engagement_id is None:
                pending.append(PendingFollowUp(sg_event_id=row.sg_event_id, problem=None, engagement_id=None))
                continue
            problem = DeliveryProblem(
                message_key=row.message_key,
                kind=row.kind,
                recipient=row.to,
                event="blocked" if row.bounce_type == "blocked" else row.event,
                reason=row.reason,
                at=row.occurred_at,
            )
            pending.append(
                PendingFollowUp(sg_event_id=row.sg_event_id, problem=problem, engagement_id=row.engagement_id)
            )
        return pending

    async def mark_followed_up(self, sg_event_id: str, note: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(email_events)
                .where(email_events.c.sg_event_id == sg_event_id)
                .values(followed_up_at=func.now(), follow_up=note)
            )

    async def events(self, message_key: str) -> list[Any]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(email_events).where(email_events.c.message_key == message_key).order_by(email_events.c.event_id)
            )
            return list(result.all())


# ---------------------------------------------------------------- telling the engagement


class ProblemNotifier(Protocol):
    async def notify(self, engagement_id: str, problem: DeliveryProblem) -> str:
        """Tell the engagement; return what happened (for the record). Raise to be asked again."""
        ...


class WorkflowSignalNotifier:
    """Signals the engagement's workflow (its id is the outbox row's engagement_id).

    A repeated signal is harmless (the workflow keeps one problem per message key). A workflow that
    no longer runs, or never did, cannot be told: that is recorded and logged, not retried.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def notify(self, engagement_id: str, problem: DeliveryProblem) -> str:
        if await signal_if_running(self._client, engagement_id, DELIVERY_PROBLEM_SIGNAL, problem):
            return "signalled"
        log.warning("no running workflow %s to tell about %s of %s", engagement_id, problem.event, problem.message_key)
        return "workflow not found"


# ---------------------------------------------------------------- processing a post


@dataclass(frozen=True)
class ProcessReport:
    recorded: int
    duplicates: int
    followed_up: int
    refused: list[str]


class DeliveryEventProcessor:
    def __init__(
        self,
        store: DeliveryEventStore,
        alerts: AlertStore,
        notifier: ProblemNotifier,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._alerts = alerts
        self._notifier = notifier
        self._clock = clock

    async def process(self, events: Sequence[DeliveryEvent]) -> ProcessReport:
        report = await self._store.record(events)
        followed_up = 0
        for pending in await self._store.pending_follow_ups([e.sg_event_id for e in events]):
            problem, engagement_id = pending.problem, pending.engagement_id
            if problem is None or engagement_id is None:
                await self._store.mark_followed_up(pending.sg_event_id, "no matching message")
                continue
            await self._alerts.raise_alert(
                engagement_id=engagement_id,
                alert_key=f"email-{problem.event}:{problem.message_key}",
                at=self._clock(),
                kind="email_delivery_problem",
                message=f"the {problem.kind} email to {problem.recipient} will not arrive ({problem.event}): "
                f"{problem.reason or 'no reason given'}",
                details=problem.model_dump(mode="json"),
            )
            note = await self._notifier.notify(engagement_id, problem)
            await self._store.mark_followed_up(pending.sg_event_id, note)
            followed_up += 1
        return ProcessReport(
            recorded=report.recorded, duplicates=report.duplicates, followed_up=followed_up, refused=report.refused
        )
