"""Every CLI command becomes the right update with the right command model (no server needed)."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from cli.args import parser
from cli.commands import command_model as _command_model
from domain.commands import (
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    CancelEngagement,
    CancelSession,
    CertifyAccess,
    ChangeRole,
    DropParkedEffect,
    GiveNotice,
    MoveEndDate,
    RecordCheckResult,
    RecordDocument,
    RecordNdaSigned,
    RecordSessionHeld,
    RemoveEngineer,
    RequestAccessReview,
    RescheduleSession,
    RestoreAccess,
    RetryParkedEffect,
    RevokeAccessNow,
    ScheduleSession,
)
from domain.phases import BY_CLI

T = datetime(2027, 3, 1, 17, tzinfo=UTC)
CASES: list[tuple[str, str, BaseModel]] = [
    ("nda-signed E --signed-by Sam", "record_nda_signed", RecordNdaSigned(actor="ops", signed_by="Sam")),
    (
        "add-engineer E --name Dan --email dan@x.example --role sre --jurisdiction PT --production",
        "add_engineer",
        AddEngineer.model_validate(
            {
                "actor": "ops",
                "engineer": {
                    "name": "Dan",
                    "email": "dan@x.example",
                    "role": "sre",
                    "production_access": True,
                    "jurisdiction": "PT",
                },
            }
        ),
    ),
    ("remove-engineer E dan@x.example", "remove_engineer", RemoveEngineer(actor="ops", email="dan@x.example")),
    (
        "change-role E dan@x.example analyst --no-production",
        "change_role",
        ChangeRole(actor="ops", email="dan@x.example", role="analyst", production_access=False),
    ),
    (
        "record-check E dan@x.example failed --notes n",
        "record_check_result",
        RecordCheckResult(actor="ops", email="dan@x.example", outcome="failed", notes="n"),
    ),
    ("give-notice E --by firm", "give_notice", GiveNotice(actor="ops", given_by="firm")),
    ("move-end-date E 2027-03-01T17:00:00Z", "move_end_date", MoveEndDate(actor="ops", end_date=T)),
    (
        "record-document E decision_logs https://wiki/x",
        "record_document",
        RecordDocument.model_validate({"actor": "ops", "document": "decision_logs", "location": "https://wiki/x"}),
    ),
    (
        "schedule-session E s1 Arch 2027-03-01T17:00:00Z --minutes 90",
        "schedule_session",
        ScheduleSession(actor="ops", session_id="s1", title="Arch", starts_at=T, duration=timedelta(minutes=90)),
    ),
    (
        "reschedule-session E s1 2027-03-01T17:00:00Z",
        "reschedule_session",
        RescheduleSession(actor="ops", session_id="s1", starts_at=T),
    ),
    ("cancel-session E s1 --reason r", "cancel_session", CancelSession(actor="ops", session_id="s1", reason="r")),
    ("session-held E s1", "record_session_held", RecordSessionHeld(actor="ops", session_id="s1")),
    ("ask E q1 'Where?'", "ask_question", AskQuestion(actor="ops", question_id="q1", text="Where?")),
    ("answer E q1 There", "answer_question", AnswerQuestion(actor="ops", question_id="q1", answer="There")),
    ("review-access E", "request_access_review", RequestAccessReview(actor="ops")),
    ("revoke-now E --reason breach", "revoke_access_now", RevokeAccessNow(actor="ops", reason="breach")),
    (
        "revoke-now E --email dan@x.example --reason laptop",
        "revoke_access_now",
        RevokeAccessNow(actor="ops", email="dan@x.example", reason="laptop"),
    ),
    ("restore-access E", "restore_access", RestoreAccess(actor="ops")),
    ("cancel E --reason withdrawn", "cancel_engagement", CancelEngagement(actor="ops", reason="withdrawn")),
    (
        "certify E 2 dan@x.example revoke",
        "certify_access",
        CertifyAccess(actor="ops", round=2, email="dan@x.example", decision="revoke"),
    ),
    ("retry-effect E --reason r", "retry_parked_effect", RetryParkedEffect(actor="ops", reason="r")),
    ("drop-effect E 4 --reason r", "drop_parked_effect", DropParkedEffect(actor="ops", effect_id=4, reason="r")),
]


@pytest.mark.parametrize(
    ("line", "update", "command"), CASES, ids=[c[0].split()[0] + str(i) for i, c in enumerate(CASES)]
)
def test_each_cli_command_maps_to_its_update(line: str, update: str, command: BaseModel) -> None:
    args = parser().parse_args(["--actor", "ops", *shlex.split(line)])
    assert _command_model(args) == command
    assert BY_CLI[args.command].update == update


def test_a_date_without_a_time_zone_is_refused_by_the_cli() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["move-end-date", "E", "2027-03-01T17:00:00"])


def test_every_command_of_the_phase_table_has_a_case() -> None:
    assert {line.split()[0] for line, _, _ in CASES} == set(BY_CLI)
