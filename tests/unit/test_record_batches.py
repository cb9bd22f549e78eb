"""Which queued effects one ``record_effects`` activity writes, and what its input carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from activities.engagement import EngagementActivities
from activities.payloads import RECORD_INPUTS, AuditInput, PhaseChange, RecordBatch, RecordStep
from adapters.alerts import AlertStore
from adapters.db import EngagementStore, create_engine
from adapters.scim import DirectoryPool
from domain.effects import AuditEffect, Effect, EmailEffect, PhaseEffect
from domain.email_kinds import EmailKind
from domain.vocabulary import Phase
from workflows.effects import BATCH_MAX, batch_at_head

AT = datetime(2026, 1, 1, tzinfo=UTC)


def effect(kind: str, effect_id: int) -> Effect:
    if kind == "email":
        return EmailEffect(id=effect_id, kind=EmailKind.NDA_REQUEST, step="nda", occurrence=1, recipients=[], facts={})
    if kind == "phase":
        return PhaseEffect(id=effect_id, at=AT, actor="ops", phase=Phase.DELIVERY, reason="test")
    return AuditEffect(id=effect_id, at=AT, actor="ops", action="noted")


queues = st.lists(
    st.tuples(st.sampled_from(["email", "phase", "audit"]), st.integers(min_value=0, max_value=3)), max_size=40
).map(lambda specs: [effect(kind, effect_id) for kind, effect_id in specs])


@given(queues)
def test_a_batch_is_the_longest_run_of_records_with_ids_at_the_head(queue: list[Effect]) -> None:
    batch = batch_at_head(queue)
    assert batch == queue[: len(batch)]
    assert len(batch) <= BATCH_MAX
    assert all(not isinstance(e, EmailEffect) and e.id for e in batch)
    rest = queue[len(batch) :]
    if rest and len(batch) < BATCH_MAX:  # it stopped at an email or an effect queued before ids
        assert isinstance(rest[0], EmailEffect) or not rest[0].id


def test_every_record_input_goes_into_a_batch_and_comes_out_the_same() -> None:
    audit = AuditInput(engagement_id="e", effect_id=3, at=AT, actor="ops", action="noted", details={"k": [1]})
    phase = PhaseChange(engagement_id="e", effect_id=4, phase=Phase.NOTICE, at=AT, actor="ops", reason="r")
    batch = RecordBatch.model_validate_json(
        RecordBatch(records=[RecordStep.of(audit), RecordStep.of(phase)]).model_dump_json()
    )
    assert [step.parsed() for step in batch.records] == [audit, phase]
    assert set(RECORD_INPUTS) >= {"AuditInput", "PhaseChange", "LedgerRecord", "EngineerRecord"}


def test_every_record_a_batch_accepts_has_the_activity_that_writes_it() -> None:
    """A record input a batch would take but no activity writes would fail its batch for ever."""
    engine = create_engine("postgresql://nobody@127.0.0.1:1/unused")  # never connected
    activities = EngagementActivities(EngagementStore(engine), DirectoryPool({}), AlertStore(engine))
    assert set(activities.record_writers()) == set(RECORD_INPUTS.values())


@pytest.mark.parametrize("records", [[], [{"input_type": "AlertInput", "input": {}}]])
def test_a_batch_holds_records_only_and_at_least_one(records: list[dict[str, object]]) -> None:
    with pytest.raises(ValidationError):
        RecordBatch.model_validate({"records": records})
