"""A queued side effect performed again by a later run (a full run let go of it after its worker had
written it: ``burst-bound``) writes its audit entry, or its alert, once: its key is the effect's,
not the run's."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.engagement import EngagementActivities
from activities.payloads import AlertInput, AuditInput, RecordEngagementInput
from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.scim import DirectoryPool
from domain.spec import parse_spec
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
