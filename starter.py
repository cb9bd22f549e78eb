"""The ops and managers' CLI: start an engagement from a spec, send it commands, read its status.

It only talks to Temporal: every command is an Update that the workflow validates, so a bad or
ill-timed command is refused with the reason and changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.temporal_connection import TemporalConnectionError
from adapters.temporal_connection import connect as temporal_connect
from domain.commands import (
    Ack,
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    CancelEngagement,
    CancelSession,
    ChangeRole,
    Command,
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
    RevokeAccessNow,
    ScheduleSession,
)
from domain.email_kinds import EmailKind, Recipient
from domain.phases import BY_CLI
from domain.screening import Adjudicate, with_firm_provider
from domain.spec import EngagementSpec, EngineerSpec, SpecError, describe_validation_error, load_spec
from domain.state import EngagementInput
from domain.views import StatusView, format_status
from domain.vocabulary import KnowledgeTransferDocument, Phase
from emails.preview import UnknownRecipient, preview_email
from settings import Settings
from workflows.commands import send
from workflows.engagement import EngagementWorkflow
from workflows.screening_commands import CheckNotFound, adjudicate

WORKFLOW_ID_PREFIX = "engagement-"


class CliError(Exception):
    """A refusal to show the person, without a traceback."""


def workflow_id(engagement: str) -> str:
    return engagement if engagement.startswith(WORKFLOW_ID_PREFIX) else WORKFLOW_ID_PREFIX + engagement


async def connect() -> Client:
    try:
        return await temporal_connect(Settings())
    except TemporalConnectionError as error:
        raise CliError(str(error)) from None


async def start_engagement(
    client: Client, spec: EngagementSpec, task_queue: str, history_limit: int | None = None
) -> WorkflowHandle[Any, Any]:
    try:
        return await client.start_workflow(
            EngagementWorkflow.run,
            EngagementInput(spec=spec, continue_as_new_after_events=history_limit),
            id=workflow_id(spec.contract_id),
            task_queue=task_queue,
            # One contract, one workflow, ever: a second start is refused, even after the first closed.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            # What an admin sees first in the Temporal UI.
            static_summary=(
                f"{spec.client.name} · contract {spec.contract_id} · "
                f"{spec.engagement_type.value.replace('_', ' ')} · {len(spec.engineers)} engineer(s)"
            ),
            static_details=(
                f"NDA {spec.agreement.nda_reference}; IP assignment: {spec.agreement.ip_assignment_clause}. "
                f"Notice {spec.notice_period.days} days, transition {spec.transition_window.days} days. "
                f"Client IAM: {spec.iam.scim_base_url} ({spec.iam.dialect}, {spec.iam.deprovision})."
            ),
        )
    except WorkflowAlreadyStartedError:
        raise CliError(f"contract {spec.contract_id} already has an engagement; nothing was started") from None


def _command_model(args: argparse.Namespace) -> Command:
    actor: str = args.actor
    name = args.command
    if name == "nda-signed":
        return RecordNdaSigned(actor=actor, signed_by=args.signed_by)
    if name == "add-engineer":
        engineer = EngineerSpec(
            name=args.name,
            email=args.email,
            role=args.role,
            production_access=args.production,
            jurisdiction=args.jurisdiction,
        )
        return AddEngineer(actor=actor, engineer=engineer)
    if name == "remove-engineer":
        return RemoveEngineer(actor=actor, email=args.email)
    if name == "change-role":
        return ChangeRole(actor=actor, email=args.email, role=args.role, production_access=args.production)
    if name == "record-check":
        return RecordCheckResult(actor=actor, email=args.email, outcome=args.outcome, notes=args.notes)
    if name == "give-notice":
        return GiveNotice(actor=actor, given_by=args.given_by, reason=args.reason)
    if name == "move-end-date":
        return MoveEndDate(actor=actor, end_date=args.end_date, reason=args.reason)
    if name == "record-document":
        return RecordDocument(actor=actor, document=args.document, location=args.location)
    if name == "schedule-session":
        return ScheduleSession(
            actor=actor,
            session_id=args.session_id,
            title=args.title,
            starts_at=args.starts_at,
            duration=timedelta(minutes=args.minutes),
        )
    if name == "session-held":
        return RecordSessionHeld(actor=actor, session_id=args.session_id, notes=args.notes)
    if name == "ask":
        return AskQuestion(actor=actor, question_id=args.question_id, text=args.text)
    if name == "answer":
        return AnswerQuestion(actor=actor, question_id=args.question_id, answer=args.text)
    if name == "review-access":
        return RequestAccessReview(actor=actor)
    if name == "revoke-now":
        return RevokeAccessNow(actor=actor, email=args.email, reason=args.reason)
    if name == "restore-access":
        return RestoreAccess(actor=actor, email=args.email)
    if name == "reschedule-session":
        duration = timedelta(minutes=args.minutes) if args.minutes else None
        return RescheduleSession(actor=actor, session_id=args.session_id, starts_at=args.starts_at, duration=duration)
    if name == "cancel-session":
        return CancelSession(actor=actor, session_id=args.session_id, reason=args.reason)
    if name == "cancel":
        return CancelEngagement(actor=actor, reason=args.reason)
    raise CliError(f"unknown command {name}")


async def send_command(client: Client, engagement: str, command: Command) -> Ack:
    handle = client.get_workflow_handle(workflow_id(engagement))
    try:
        return await send(handle, command)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise CliError(f"refused: {reason}") from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no running engagement {workflow_id(engagement)}") from None
        raise


async def read_status(client: Client, engagement: str) -> StatusView:
    handle = client.get_workflow_handle(workflow_id(engagement))
    try:
        return await handle.query(EngagementWorkflow.status)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no engagement {workflow_id(engagement)}") from None
        raise


def _datetime(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone, e.g. 2027-03-01T17:00:00Z")
    return moment.astimezone(UTC)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="engagement", description=__doc__)
    root.add_argument("--actor", default=os.environ.get("ENGAGEMENT_ACTOR") or getpass.getuser(), help="who acts")
    sub = root.add_subparsers(dest="command", required=True)

    def command(name: str) -> argparse.ArgumentParser:
        """A command of the phase table: its help says what it does and when it is legal."""
        rule = BY_CLI[name]
        legal = ", ".join(p.value for p in Phase if p in rule.phases)
        return sub.add_parser(name, help=f"{rule.summary} ({legal})", description=rule.summary)

    p = sub.add_parser("validate", help="check a spec file without starting anything")
    p.add_argument("spec", type=Path)
    p = sub.add_parser("start", help="start the engagement of a signed contract from its spec")
    p.add_argument("spec", type=Path)
    p = sub.add_parser("status", help="phase, timeline, engineers and their access, handover")
    p.add_argument("engagement", help="contract id or workflow id")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", help="every engagement and its state")
    p.add_argument("--json", action="store_true")

    p = command("nda-signed")
    p.add_argument("engagement")
    p.add_argument("--signed-by", required=True)
    p = command("add-engineer")
    p.add_argument("engagement")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--jurisdiction", required=True, help="ISO country code, e.g. PT")
    p.add_argument("--production", action="store_true", help="needs production access")
    p = command("remove-engineer")
    p.add_argument("engagement")
    p.add_argument("email")
    p = command("change-role")
    p.add_argument("engagement")
    p.add_argument("email")
    p.add_argument("role")
    p.add_argument("--production", action=argparse.BooleanOptionalAction, default=None)
    p = command("record-check")
    p.add_argument("engagement")
    p.add_argument("email")
    p.add_argument("outcome", choices=["cleared", "failed"])
    p.add_argument("--notes")
    p = command("give-notice")
    p.add_argument("engagement")
    p.add_argument("--by", dest="given_by", choices=["client", "firm"], required=True)
    p.add_argument("--reason")
    p = command("move-end-date")
    p.add_argument("engagement")
    p.add_argument("end_date", type=_datetime, help="ISO 8601 with a time zone")
    p.add_argument("--reason")
    p = command("record-document")
    p.add_argument("engagement")
    p.add_argument("document", choices=[d.value for d in KnowledgeTransferDocument])
    p.add_argument("location")
    p = command("schedule-session")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("title")
    p.add_argument("starts_at", type=_datetime)
    p.add_argument("--minutes", type=int, default=60)
    p = command("session-held")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("--notes")
    p = command("ask")
    p.add_argument("engagement")
    p.add_argument("question_id")
    p.add_argument("text")
    p = command("answer")
    p.add_argument("engagement")
    p.add_argument("question_id")
    p.add_argument("text")
    p = command("review-access")
    p.add_argument("engagement")
    p = command("revoke-now")
    p.add_argument("engagement")
    p.add_argument("--email", help="one engineer; everyone when omitted")
    p.add_argument("--reason", required=True)
    p = command("restore-access")
    p.add_argument("engagement")
    p.add_argument("--email", help="one engineer; the whole engagement when omitted")
    p = command("reschedule-session")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("starts_at", type=_datetime)
    p.add_argument("--minutes", type=int)
    p = command("cancel-session")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("--reason")
    p = command("cancel")
    p.add_argument("engagement")
    p.add_argument("--reason", required=True)
    p = sub.add_parser("adjudicate-check", help="decide on a provider report to consider: engaged or adverse action")
    p.add_argument("engagement")
    p.add_argument("email")
    p.add_argument("decision", choices=["engaged", "adverse_action"])
    p.add_argument("--reason", required=True)
    p = sub.add_parser("preview-email", help="render an email for a spec from sample facts, without sending it")
    p.add_argument("spec", type=Path)
    p.add_argument("kind", choices=[k.value for k in EmailKind])
    p.add_argument("--recipient", metavar="EMAIL", help="a contact or engineer of the spec (default: the first)")
    p.add_argument("--format", dest="output", choices=["text", "html", "eml"], default="text")
    return root


async def run(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    if args.command == "validate":
        spec = load_spec(args.spec, allow_short_durations=settings.allow_short_durations)
        print(f"{args.spec}: valid spec for contract {spec.contract_id} ({len(spec.engineers)} engineers)")
        return 0
    if args.command == "preview-email":
        spec = load_spec(args.spec, allow_short_durations=True)  # a preview starts nothing
        try:
            sender = Recipient(name=settings.email_from_name, email=settings.email_from)
            preview = preview_email(spec, EmailKind(args.kind), args.recipient, args.output, sender)
        except UnknownRecipient as error:
            raise CliError(str(error)) from None
        sys.stdout.write(preview)
        return 0
    if args.command == "start":
        spec = load_spec(args.spec, allow_short_durations=settings.allow_short_durations)  # refused before any contact
        spec = with_firm_provider(spec, settings.screening_provider)
        client = await connect()
        handle = await start_engagement(client, spec, settings.task_queue)
        print(f"started {handle.id}")
        return 0
    client = await connect()
    if args.command == "status":
        view = await read_status(client, args.engagement)
        print(view.model_dump_json(indent=2) if args.json else format_status(view))
        return 0
    if args.command == "list":
        rows = []
        async for execution in client.list_workflows("WorkflowType = 'EngagementWorkflow'"):
            rows.append({"id": execution.id, "status": execution.status.name if execution.status else "?"})
        latest = {row["id"]: row for row in rows}  # runs of one engagement share its id
        if args.json:
            print(json.dumps(list(latest.values()), indent=2))
        else:
            for row in latest.values():
                print(f"{row['id']:<50} {row['status']}")
        return 0
    if args.command == "adjudicate-check":
        command = Adjudicate(actor=args.actor, decision=args.decision, reason=args.reason)
        try:
            decided = await adjudicate(client, workflow_id(args.engagement), args.email, command)
        except (CheckNotFound, ApplicationError) as error:
            raise CliError(f"refused: {error}") from None
        print(f"adjudicated: {decided.stage}")
        return 0
    ack = await send_command(client, args.engagement, _command_model(args))
    print(f"{ack.accepted} (phase: {ack.phase.value})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(run(sys.argv[1:] if argv is None else argv))
    except (SpecError, CliError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, SpecError) else 1
    except ValidationError as error:
        print(f"error: {describe_validation_error(error)}", file=sys.stderr)
        return 2


def entrypoint() -> None:
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio/sdk-python#300: teardown after using a client can abort the interpreter (134/139)
    # although the work succeeded; leave with the real status before teardown runs.
    os._exit(status)


if __name__ == "__main__":
    entrypoint()
