"""Whatever a manager (or an attacker) sends, no workflow task fails and a refusal changes nothing.

Over a thousand generated commands of every kind, well-formed or not (wrong types, control
characters, dates that overflow, durations of millennia, missing and extra fields), go to real
engagements in every running phase on Temporal's time-skipping server. The history then shows no
failed workflow task, and every accepted update completed: none was refused after it had started
changing the state (a refusal is decided by the validator, which leaves no event).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import Phase as Phase_
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.phases import COMMANDS
from domain.vocabulary import KnowledgeTransferDocument, Phase
from tests.helpers import Harness

RUN_EARLY = True  # one of the longest files: started first (tests/conftest.py)

NOW = datetime.now(UTC)  # the time-skipping server starts at the real time
PHASES = (Phase.AWAITING_NDA, Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE, Phase.TRANSITION)
EMAILS = ["alice@firm.example", "bob@firm.example", "carol@firm.example", "dave@firm.example", "x@y.example"]

NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "a\x00b", "Eve <eve@evil.example>, Sam", "line\nbreak", "\u202eevil", "x" * 5000]),
)
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    NASTY_TEXT,
    st.lists(st.integers(), max_size=3),
)
MOMENT = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()
    ),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2027-02-30T10:00:00Z", "tomorrow"]),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1)).map(lambda d: d.isoformat()),
)
DURATION = st.one_of(
    st.sampled_from(["PT1H", "PT0S", "P8000Y", "-PT5M", "PT100000000M", "P1D", 60, True, "PT30M"]),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)).map(lambda d: f"PT{int(d.total_seconds())}S"),
)
PLAIN = st.from_regex(r"\A[A-Za-z][A-Za-z ]{0,20}\Z")
SOON = st.integers(min_value=-2, max_value=90).map(lambda days: (NOW + timedelta(days=days)).isoformat())
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "actor": st.sampled_from(["ops", "erin", "ciso"]),
    "email": st.sampled_from(EMAILS),
    "signed_by": st.just("Sam Signer"),
    "role": st.sampled_from(["developer", "sre", "analyst", "ghost"]),
    "production_access": st.none() | st.booleans(),
    "outcome": st.sampled_from(["cleared", "failed"]),
    "given_by": st.sampled_from(["client", "firm"]),
    "end_date": SOON,
    "starts_at": SOON,
    "duration": st.sampled_from(["PT1H", "PT30M", "PT12H"]),
    "document": st.sampled_from([d.value for d in KnowledgeTransferDocument]),
    "location": st.sampled_from(["https://wiki.example/runbooks", "wiki/runbooks"]),
    "session_id": st.sampled_from(["s1", "s2"]),
    "question_id": st.sampled_from(["q1", "q2"]),
    "effect_id": st.integers(min_value=1, max_value=40),
    "title": PLAIN,
    "text": PLAIN,
    "answer": PLAIN,
    "reason": PLAIN,
    "notes": st.none() | PLAIN,
    "engineer": st.fixed_dictionaries(
        {
            "name": st.just("Dave New"),
            "email": st.sampled_from(EMAILS),
            "role": st.sampled_from(["developer", "analyst", "ghost"]),
            "production_access": st.booleans(),
            "jurisdiction": st.sampled_from(["PT", "DE"]),
        }
    ),
}
NASTY: dict[str, st.SearchStrategy[Any]] = {
    "end_date": MOMENT,
    "starts_at": MOMENT,
    "duration": DURATION,
    "location": st.sampled_from(["javascript:alert(1)", "", "https://x.example/" + "a" * 3000]),
    "session_id": st.sampled_from(["../etc", "", "a" * 41]),
    "question_id": st.sampled_from(["", "q\n1"]),
    "effect_id": st.integers(min_value=-(2**70), max_value=2**70),
    "role": st.sampled_from(["", "x" * 500]),
    "outcome": st.just("maybe"),
    "given_by": st.just("nobody"),
    "document": st.just("secrets"),
}


def command_payload(update: str, model: type[Any]) -> st.SearchStrategy[tuple[str, Any]]:
    """A payload for one update: half well-formed (plausible values, legal or not in the phase),
    half with nasty values, missing or extra fields, or junk instead of an object."""
    names = list(model.model_fields)
    plausible = st.fixed_dictionaries({n: PLAUSIBLE.get(n, PLAIN) for n in names if n in PLAUSIBLE or n != "engineer"})
    nasty_fields = {n: st.one_of(NASTY.get(n, NASTY_TEXT), ANYTHING) for n in names}
    nasty = st.one_of(
        st.builds(lambda good, bad: {**good, **bad}, plausible, st.fixed_dictionaries({}, optional=nasty_fields)),
        st.fixed_dictionaries({}, optional=nasty_fields),
        st.builds(lambda good, extra: {**good, **extra}, plausible, st.dictionaries(st.just("surprise"), ANYTHING)),
        ANYTHING,
    )
    return st.tuples(st.just(update), st.one_of(plausible, nasty))


ANY_COMMAND = st.one_of([command_payload(rule.update, rule.command) for rule in COMMANDS])


async def failed_tasks_and_updates(handle: WorkflowHandle[Any, Any]) -> tuple[list[str], int]:
    """Failed workflow tasks (their failures), and updates that completed with a failure (refused after
    acceptance)."""
    failed_tasks: list[str] = []
    failed_updates = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attributes = event.workflow_task_failed_event_attributes
            # UNHANDLED_COMMAND is the server refusing a completion that raced a new update (a command
            # that ended the engagement while others kept coming): Temporal's own retry, not a failure.
            if attributes.cause != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND:
                failed_tasks.append(f"{WorkflowTaskFailedCause.Name(attributes.cause)}: {attributes.failure.message}")
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            failed_updates += event.workflow_execution_update_completed_event_attributes.outcome.HasField("failure")
    return failed_tasks, failed_updates


BATCH = 10
EXAMPLES = 21  # 5 phases x 21 examples x 10 commands = 1,050 commands


def generated_batches() -> list[list[tuple[str, Any]]]:
    """Batches of commands from hypothesis (generation only: shrinking would replay them against a
    live engagement, which is meaningless)."""
    batches: list[list[tuple[str, Any]]] = []

    @settings(
        max_examples=EXAMPLES,
        phases=[Phase_.generate],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(ANY_COMMAND, min_size=BATCH, max_size=BATCH))
    def collect(batch: list[tuple[str, Any]]) -> None:
        batches.append(batch)

    collect()
    return batches


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.value)
async def test_a_thousand_generated_commands_never_fail_a_workflow_task(
    env: WorkflowEnvironment, harness: Harness, phase: Phase
) -> None:
    batches = generated_batches()
    handle: WorkflowHandle[Any, Any] | None = None
    sent = 0
    for batch in batches:
        if handle is None or (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            handle = await _engagement_in(env, harness, phase)
        for update, payload in batch:
            try:
                await handle.execute_update(update, payload)
            except WorkflowUpdateFailedError:
                pass  # refused, with its reason
            except RPCError as error:  # the engagement ended legitimately (a command cancelled it)
                assert "completed" in error.message.lower() or "not found" in error.message.lower(), error.message
            sent += 1
        failed_tasks, failed_updates = await failed_tasks_and_updates(handle)
        assert not failed_tasks, f"a workflow task failed in {phase}: {failed_tasks}"
        assert failed_updates == 0, f"an update was refused after it started changing the state in {phase}"
        await harness.settle(handle, within=60)  # still readable, and it carries on to a settled state
    assert sent == EXAMPLES * BATCH


async def _engagement_in(env: WorkflowEnvironment, harness: Harness, phase: Phase) -> WorkflowHandle[Any, Any]:
    handle = await harness.start(harness.spec())
    if phase is Phase.AWAITING_NDA:
        await harness.settle(handle, phase)
        return handle
    if phase is not Phase.TRANSITION:
        await harness.drive_to(handle, phase)
        return handle
    view = await harness.drive_to(handle, Phase.NOTICE)
    assert view.timeline.end_date is not None
    await env.sleep(view.timeline.end_date - await env.get_current_time() + timedelta(minutes=1))
    await harness.settle(handle, Phase.TRANSITION)
    return handle
