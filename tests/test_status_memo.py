"""`status` without a replay: a run keeps its status view in its memo (the ``status-memo`` patch),
upserted where the engagement is shown and as it goes to sleep, and the CLI reads it from
Temporal's own record whenever the run is at rest.

On the dev server: the time-skipping test server has no DescribeTaskQueue, so there the CLI always
asks the worker (which the other test files exercise).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore
from adapters.scim import ScimDirectory
from cli.engagements import _polled, read_status
from domain.commands import AddEngineer, CancelEngagement, ChangeRole, RecordCheckResult, RecordNdaSigned
from domain.spec import EngineerSpec
from domain.state import DeliveryProblem
from domain.views import STATUS_MEMO, StatusView, pack_status, unpack_status
from domain.vocabulary import Phase
from tests.devserver import dev_server, requires_temporal
from tests.helpers import Harness
from tests.histories_io import closed_history, keep
from tests.test_history_paths import lean

__all__ = ["dev_server"]  # a fixture, imported for pytest

ALICE, CAROL, DAVE = "alice@firm.example", "carol@firm.example", "dave@firm.example"


async def kept(handle: WorkflowHandle[Any, Any]) -> StatusView:
    """The view in the latest run's memo, as Temporal holds it now."""
    described = await handle.describe()  # by id alone: the latest run
    packed = await described.memo_value(STATUS_MEMO, None, type_hint=bytes)
    assert isinstance(packed, bytes), f"no status view in the memo of {handle.id}"
    view = unpack_status(packed)
    assert view is not None
    return view


async def same_as_live(harness: Harness, handle: WorkflowHandle[Any, Any], phase: Phase) -> StatusView:
    """Settled in the phase: the memo holds exactly what the worker's query answers."""
    live = await harness.settle(handle, phase)
    assert (await kept(handle)).model_dump() == live.model_dump()
    assert (await read_status(harness.client, handle.id)).model_dump() == live.model_dump()
    return live


@requires_temporal
async def test_status_shows_each_change_once_its_command_is_acknowledged(
    dev_server: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    async with Harness.running(dev_server.client, store, tenant, tmp_path) as harness:
        handle = await harness.start(lean(harness, ALICE, CAROL))
        await same_as_live(harness, handle, Phase.AWAITING_NDA)
        assert await _polled(harness.client, harness.task_queue, timedelta(seconds=5))  # so read_status used the memo

        # Read your writes: once a command is acknowledged, `status` shows its outcome, with no wait at
        # all (from the memo when the run is at rest, else from the worker).
        await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
        assert (await read_status(harness.client, handle.id)).timeline.nda_signed_at is not None
        await same_as_live(harness, handle, Phase.ONBOARDING)
        await harness.update(handle, RecordCheckResult(actor="hr", email=ALICE, outcome="cleared"))
        await same_as_live(harness, handle, Phase.DELIVERY)

        dave = EngineerSpec(name="Dave New", email=DAVE, role="analyst", production_access=False, jurisdiction="US")
        await harness.update(handle, AddEngineer(actor="erin", engineer=dave))
        assert DAVE in {e.email for e in (await read_status(harness.client, handle.id)).engineers}
        await harness.update(handle, ChangeRole(actor="erin", email=CAROL, role="developer"))
        view = await read_status(harness.client, handle.id)
        assert next(e.role for e in view.engineers if e.email == CAROL) == "developer"
        view = await same_as_live(harness, handle, Phase.DELIVERY)
        assert {e.email for e in view.engineers} == {ALICE, CAROL, DAVE}

        await keep("status_memo_delivery", await handle.fetch_history())

        # A run that closes publishes its last view before it completes.
        ended = await harness.start(lean(harness, CAROL))
        await same_as_live(harness, ended, Phase.AWAITING_NDA)
        await harness.update(ended, CancelEngagement(actor="erin", reason="budget withdrawn"))
        history = await closed_history(harness.client, ended.id)
        final = await kept(ended)
        assert final.phase is Phase.CANCELLED and final.pending_effects == 0
        upserts = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED]
        assert upserts, "the run upserted no status view"
        await keep("status_memo_cancelled", history)

    # No worker runs now: a closed run's view is read from the memo all the same.
    assert (await ended.describe()).status is WorkflowExecutionStatus.COMPLETED
    closed = await read_status(harness.client, ended.id, wait=timedelta(seconds=1))
    assert closed.model_dump() == final.model_dump()


@requires_temporal
async def test_a_view_past_the_memo_bound_leaves_the_memo_and_the_engagement_goes_on(
    dev_server: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    """Temporal fails a workflow whose memo outgrows its limit: a view that big is not kept there (the
    key is removed), `status` asks the worker instead, and the engagement takes commands as before."""
    async with Harness.running(dev_server.client, store, tenant, tmp_path) as harness:
        handle = await harness.start(lean(harness, CAROL))
        await same_as_live(harness, handle, Phase.AWAITING_NDA)
        at = datetime(2026, 11, 2, tzinfo=UTC)
        for n in range(60):  # SendGrid's reasons, incompressible: about 18 KB packed
            reason = secrets.token_urlsafe(300)
            problem = DeliveryProblem(
                message_key=f"m{n}",
                kind="nda_request",
                recipient="sam@acme.example",
                event="bounce",
                reason=reason,
                at=at,
            )
            await handle.signal("email_delivery_problem", problem)
        live = await harness.settle(handle, Phase.AWAITING_NDA)
        assert len(live.delivery_problems) == 60
        assert pack_status(live.model_dump_json()) is None
        described = await handle.describe()
        assert STATUS_MEMO not in await described.memo(), "a view past the bound is kept in the memo"
        assert (await read_status(harness.client, handle.id)).model_dump() == live.model_dump()

        await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
        view = await harness.settle(handle, Phase.DELIVERY)  # Carol needs no check
        assert view.timeline.nda_signed_at is not None and len(view.delivery_problems) == 60
        assert STATUS_MEMO not in await (await handle.describe()).memo()
        await keep("status_memo_past_bound", await handle.fetch_history())
