"""A queued side effect performed again by a later run (a full run let go of it after its worker had
written it: ``burst-bound``) writes its audit entry, or its alert, once: its key is the effect's,
not the run's."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.engagement import EngagementActivities
from activities.payloads import AlertInput, AuditInput, RecordBatch, RecordEngagementInput, RecordStep
from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.scim import DirectoryPool
from domain.spec import parse_spec
from tests.helpers import eventually
from tests.sample_spec import spec_data

AT = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)


async def in_run(run: str, activity_id: str, workflow_id: str, activity: Any, argument: Any) -> None:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, workflow_id=workflow_id, workflow_run_id=run, activity_id=activity_id
    )
    await environment.run(activity, argument)


async def test_an_effect_done_again_in_the_next_run_is_audited_once(store: EngagementStore) -> None:
    activities = EngagementActivities(store, DirectoryPool({}), AlertStore(store.engine))
    spec = parse_spec({**spec_data(), "contract_id": f"KEYS-{uuid.uuid4().hex[:8]}"})
    engagement = f"engagement-{spec.contract_id}"
    contract = RecordEngagementInput(engagement_id=engagement, effect_id=1, spec=spec, at=AT)
    noted = AuditInput(engagement_id=engagement, effect_id=2, at=AT, actor="ops", action="noted")
    unkeyed = AuditInput(engagement_id=engagement, at=AT, actor="ops", action="unkeyed")
    alert = AlertInput(engagement_id=engagement, effect_id=3, at=AT, kind="effect_parked", message="m")
    for run, activity_id in (("run-1", "4"), ("run-2", "1")):  # the same effects, performed by two runs
        await in_run(run, activity_id, engagement, activities.record_engagement, contract)
        await in_run(run, str(int(activity_id) + 1), engagement, activities.append_audit, noted)
        await in_run(run, str(int(activity_id) + 2), engagement, activities.append_audit, unkeyed)
        await in_run(run, str(int(activity_id) + 3), engagement, activities.raise_alert, alert)
    actions = [entry.action for entry in await store.audit_entries(engagement)]
    assert actions.count("engagement_recorded") == 1 and actions.count("noted") == 1
    assert actions.count("unkeyed") == 2  # without an effect id (queued before ids): a key per run
    assert [row.kind for row in await AlertStore(store.engine).alerts(engagement)] == ["effect_parked"]


async def test_a_batch_on_a_slow_database_ends_early_with_what_it_wrote(store: EngagementStore) -> None:
    """Each write takes 0.4 s (a trigger sleeps): a batch whose attempt may run 1 s stops after half of
    that, having written its first records once; the rest is the next batch's."""
    activities = EngagementActivities(store, DirectoryPool({}), AlertStore(store.engine))
    engagement = f"engagement-SLOW-{uuid.uuid4().hex[:8]}"
    notes = numbered_notes(engagement, 5)
    async with audit_trigger(store, "slow_audit", f"NEW.engagement_id = '{engagement}'", "PERFORM pg_sleep(0.4)"):
        done = await attempt(engagement, seconds=1).run(activities.record_effects, batch_of(notes))
    assert 1 <= done.written <= 2  # each write takes 0.4 s at least: past 0.5 s after the second
    actions = [entry.action for entry in await store.audit_entries(engagement)]
    assert actions == [f"note {n}" for n in range(1, done.written + 1)]


async def test_a_record_that_hangs_behind_the_first_is_cut_off_and_leads_the_next_batch(
    store: EngagementStore,
) -> None:
    """The second of three writes would sleep a minute in PostgreSQL: the batch, whose attempt may run
    2 s, cuts it off before the attempt times out and returns the first alone, so the hanging record,
    not the first, is what the next attempt fails on. The cut-off statement is cancelled in the
    server, and the pool goes on writing."""
    activities = EngagementActivities(store, DirectoryPool({}), AlertStore(store.engine))
    engagement = f"engagement-HANG-{uuid.uuid4().hex[:8]}"
    notes = numbered_notes(engagement, 3)
    second = f"NEW.engagement_id = '{engagement}' AND NEW.action = 'note 2'"
    async with audit_trigger(store, "hang_audit", second, "PERFORM pg_sleep(60)"):
        done = await attempt(engagement, seconds=2).run(activities.record_effects, batch_of(notes))

        async def nothing_sleeps() -> bool:
            async with store.engine.connect() as conn:
                sleeping = await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event = 'PgSleep'"
                    )
                )
                return bool(sleeping.scalar_one() == 0)

        await eventually(nothing_sleeps, "the cut-off statement cancelled in PostgreSQL")
    assert done.written == 1
    assert [entry.action for entry in await store.audit_entries(engagement)] == ["note 1"]
    assert (await attempt(engagement, seconds=2).run(activities.record_effects, batch_of(notes[1:]))).written == 2
    assert [entry.action for entry in await store.audit_entries(engagement)] == ["note 1", "note 2", "note 3"]


def numbered_notes(engagement: str, count: int) -> list[AuditInput]:
    return [
        AuditInput(engagement_id=engagement, effect_id=n, at=AT, actor="ops", action=f"note {n}")
        for n in range(1, count + 1)
    ]


def batch_of(notes: list[AuditInput]) -> RecordBatch:
    return RecordBatch(records=[RecordStep.of(note) for note in notes])


def attempt(engagement: str, seconds: float) -> ActivityEnvironment:
    """An activity attempt of the engagement's workflow that may run ``seconds``."""
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, workflow_id=engagement, start_to_close_timeout=timedelta(seconds=seconds)
    )
    return environment


@contextlib.asynccontextmanager
async def audit_trigger(store: EngagementStore, name: str, when: str, then: str) -> AsyncIterator[None]:
    """A trigger that runs ``then`` before an audit row for which ``when`` holds is inserted."""
    async with store.engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN IF {when} THEN {then}; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        await conn.execute(
            text(f"CREATE TRIGGER {name} BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION {name}()")
        )
    try:
        yield
    finally:
        async with store.engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER {name} ON audit_log"))
            await conn.execute(text(f"DROP FUNCTION {name}()"))
