"""The one table of commands: each command's Temporal Update name, its CLI name, and the phases in
which it is legal. Validators, the README's command list and the phase tests all read it."""

from __future__ import annotations

from dataclasses import dataclass

from domain import commands as c
from domain.vocabulary import Phase

P = Phase


@dataclass(frozen=True)
class CommandRule:
    update: str
    """The Temporal Update's name: stable for as long as engagements run."""
    cli: str
    """The CLI command that sends it."""
    command: type[c.Command]
    phases: frozenset[Phase]
    """The phases in which the command is legal."""
    summary: str
    """What it does, in a manager's words (CLI help and README)."""
    ends_access: bool = False
    """It takes access away (or moves the moment it ends): never refused because the workflow's run is
    full and about to continue as new, so a burst of other commands cannot hold it back."""


def _rule(
    update: str, cli: str, command: type[c.Command], phases: set[Phase], summary: str, *, ends_access: bool = False
) -> CommandRule:
    return CommandRule(update, cli, command, frozenset(phases), summary, ends_access)


def _ends_access(update: str, cli: str, command: type[c.Command], phases: set[Phase], summary: str) -> CommandRule:
    """A rule whose command takes access away: a full run still takes it (``CommandRule.ends_access``)."""
    return _rule(update, cli, command, phases, summary, ends_access=True)


RUNNING = {P.AWAITING_NDA, P.ONBOARDING, P.DELIVERY, P.NOTICE, P.TRANSITION}
STAFFED = {P.ONBOARDING, P.DELIVERY, P.NOTICE}

COMMANDS: tuple[CommandRule, ...] = (
    _rule("record_nda_signed", "nda-signed", c.RecordNdaSigned, {P.AWAITING_NDA}, "record the NDA as signed"),
    _rule("add_engineer", "add-engineer", c.AddEngineer, {P.ONBOARDING, P.DELIVERY}, "staff one more engineer"),
    _ends_access(
        "remove_engineer", "remove-engineer", c.RemoveEngineer, STAFFED, "take an engineer off; access ends now"
    ),
    _rule("change_role", "change-role", c.ChangeRole, STAFFED, "give an engineer another role (and access)"),
    _rule("record_check_result", "record-check", c.RecordCheckResult, STAFFED, "record a background check result"),
    _rule("give_notice", "give-notice", c.GiveNotice, {P.ONBOARDING, P.DELIVERY}, "give notice; the end date follows"),
    _ends_access("move_end_date", "move-end-date", c.MoveEndDate, {P.NOTICE}, "move the agreed end date"),
    _rule(
        "record_document",
        "record-document",
        c.RecordDocument,
        {P.NOTICE, P.TRANSITION},
        "record a knowledge-transfer document as delivered",
    ),
    _rule("schedule_session", "schedule-session", c.ScheduleSession, {P.NOTICE}, "schedule a handover session"),
    _rule("reschedule_session", "reschedule-session", c.RescheduleSession, {P.NOTICE}, "move a handover session"),
    _rule("cancel_session", "cancel-session", c.CancelSession, {P.NOTICE}, "cancel a handover session"),
    _rule(
        "record_session_held",
        "session-held",
        c.RecordSessionHeld,
        {P.NOTICE, P.TRANSITION},
        "record a handover session as held",
    ),
    _rule("ask_question", "ask", c.AskQuestion, {P.TRANSITION}, "record a transition-window question"),
    _rule("answer_question", "answer", c.AnswerQuestion, {P.TRANSITION}, "answer a transition-window question"),
    _rule("request_access_review", "review-access", c.RequestAccessReview, {P.DELIVERY}, "reconcile the IAM now"),
    _ends_access(
        "certify_access",
        "certify",
        c.CertifyAccess,
        {P.DELIVERY, P.NOTICE},
        "keep or revoke an engineer in an access certification round",
    ),
    _ends_access(
        "revoke_access_now",
        "revoke-now",
        c.RevokeAccessNow,
        RUNNING,
        "emergency: revoke one engineer's access, or everyone's, at once",
    ),
    _rule("restore_access", "restore-access", c.RestoreAccess, STAFFED, "lift an emergency revocation"),
    _ends_access(
        "cancel_engagement", "cancel", c.CancelEngagement, {P.AWAITING_NDA, P.ONBOARDING}, "cancel before delivery"
    ),
    _rule("retry_parked_effect", "retry-effect", c.RetryParkedEffect, set(P), "retry a parked side effect now"),
    _rule("drop_parked_effect", "drop-effect", c.DropParkedEffect, set(P), "give up a parked side effect (audited)"),
)

RULES: dict[type[c.Command], CommandRule] = {rule.command: rule for rule in COMMANDS}
BY_CLI: dict[str, CommandRule] = {rule.cli: rule for rule in COMMANDS}


def legal_phases(command: type[c.Command]) -> frozenset[Phase]:
    return RULES[command].phases


def markdown_table() -> str:
    """The README's command list, generated from the table (a test keeps the README in step)."""
    order = list(Phase)
    lines = [
        "| command | update | " + " | ".join(p.value for p in order) + " | what it does |",
        "| --- | --- | " + " | ".join("---" for _ in order) + " | --- |",
    ]
    for rule in COMMANDS:
        marks = " | ".join("✓" if p in rule.phases else "" for p in order)
        lines.append(f"| `{rule.cli}` | `{rule.update}` | {marks} | {rule.summary} |")
    return "\n".join(lines)
