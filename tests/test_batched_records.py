"""``batched-records``: records queued one behind another are written by one activity, in order, each
once; a record that cannot be written ends its batch, leads the next one, and is parked alone.

Real peers: PostgreSQL (behind a loopback proxy the test cuts, and a trigger that refuses one
document), the scim2-server tenant, Temporal's time-skipping server.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore
from adapters.scim import ScimDirectory
from domain.commands import RetryParkedEffect
from domain.vocabulary import KnowledgeTransferDocument, Phase
from tests.helpers import Harness, eventually
from tests.histories_io import keep
from tests.tcp_proxy import TcpProxy, database_behind_proxy

REFUSED = KnowledgeTransferDocument.INFRASTRUCTURE_DOCUMENTATION
"""The document the database refuses until the test lets it through."""
ALL = {document.value for document in KnowledgeTransferDocument}


async def batches(handle: WorkflowHandle[Any, Any]) -> list[tuple[list[dict[str, Any]], int]]:
    """Every ``record_effects`` activity of the run: the records it was given and how many it wrote."""
    events = [event async for event in handle.fetch_history_events()]
    given = {
        e.event_id: json.loads(e.activity_task_scheduled_event_attributes.input.payloads[0].data)["records"]
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "record_effects"
    }
    return [
        (
            given[e.activity_task_completed_event_attributes.scheduled_event_id],
            json.loads(e.activity_task_completed_event_attributes.result.payloads[0].data)["written"],
        )
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id in given
    ]


async def test_queued_records_go_in_one_activity_and_one_that_fails_is_parked_alone(
    env: WorkflowEnvironment, database_url: str, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    async with database_behind_proxy(database_url) as (proxy, engine):
        async with Harness.running(env.client, EngagementStore(engine), tenant, tmp_path) as harness:
            await _batch_then_park(env, harness, store, proxy)


async def _batch_then_park(env: WorkflowEnvironment, harness: Harness, store: EngagementStore, proxy: TcpProxy) -> None:
    handle = await harness.start(harness.spec(effect_park_after=timedelta(minutes=5)))
    await harness.drive_to(handle, Phase.NOTICE)

    # Onboarding queued records one behind another (phase, ledger, engineers, audit): each batch
    # wrote all it was given, and every record is in the audit log once.
    onboarding = await batches(handle)
    assert any(len(records) > 1 for records, _ in onboarding)
    assert all(written == len(records) for records, written in onboarding)
    keys = [entry.event_key for entry in await store.audit_entries(handle.id)]
    assert len(keys) == len(set(keys))
    for records, _ in onboarding:
        for record in records:
            if record["input_type"] != "LedgerRecord":  # a ledger entry is audited when it changed
                assert f"{handle.id}/effect/{record['input']['effect_id']}" in keys

    await _refuse(store, handle.id, REFUSED)
    try:
        # The database is out of reach while the five documents are recorded: they queue up behind the
        # first, so the lane takes the rest as one batch once it is back.
        await proxy.down()
        await harness.hand_over(handle)
        await proxy.up()

        async def parked() -> Any:
            await env.sleep(timedelta(minutes=1))  # the refused document keeps failing as time passes
            return (await harness.status(handle)).parked_effects

        [parked_effect] = await eventually(parked, "the refused document parked alone")
        assert parked_effect.what == f"document record {REFUSED.value}"
        assert "refused by the test" in parked_effect.last_error

        async def the_rest_delivered() -> bool:  # the documents behind the parked one go on
            return await delivered(store, handle.id) == ALL - {REFUSED.value}

        await eventually(the_rest_delivered, "every other document recorded")
        # A batch wrote what came before the refused document and stopped there.
        partial = [(records, written) for records, written in await batches(handle) if written < len(records)]
        assert partial
        for records, written in partial:
            assert records[written]["input"]["record"]["name"] == REFUSED.value
    finally:
        await _refuse(store, handle.id, None)

    # The database takes it now: an operator retries it, and every document is recorded once.
    await harness.update(handle, RetryParkedEffect(actor="ops", reason="the refusal is lifted"))
    await eventually(lambda: _all_delivered(store, handle.id), "the retried document recorded")
    audit = [e for e in await store.audit_entries(handle.id) if e.action == "document_delivered"]
    assert sorted(e.details["document"] for e in audit) == sorted(ALL)
    await keep("batched_records", await handle.fetch_history())


async def _refuse(store: EngagementStore, engagement_id: str, document: KnowledgeTransferDocument | None) -> None:
    """A trigger that makes the database refuse one engagement's document; ``None`` takes it away."""
    async with store.engine.begin() as conn:
        if document is None:
            await conn.execute(text("DROP TRIGGER refuse_one_document ON kt_documents"))
            await conn.execute(text("DROP FUNCTION refuse_one_document()"))
            return
        await conn.execute(
            text(
                "CREATE FUNCTION refuse_one_document() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.engagement_id = '{engagement_id}' AND NEW.name = '{document.value}' THEN "
                "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER refuse_one_document BEFORE INSERT OR UPDATE ON kt_documents "
                "FOR EACH ROW EXECUTE FUNCTION refuse_one_document()"
            )
        )


async def delivered(store: EngagementStore, engagement_id: str) -> set[str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT name FROM kt_documents WHERE engagement_id = :id"), {"id": engagement_id}
        )
        return {row.name for row in rows}


async def _all_delivered(store: EngagementStore, engagement_id: str) -> bool:
    return await delivered(store, engagement_id) == ALL
