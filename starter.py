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

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.email import OutgoingEmail, mime_message
from domain.commands import (
    Ack,
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    CancelEngagement,
    CancelSession,
    ChangeRole,
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
from domain.email_kinds import EmailKind, Recipient, people
from domain.spec import EngagementSpec, EngineerSpec, SpecError, describe_validation_error, load_spec
from domain.state import EngagementInput
from domain.views import StatusView
from domain.vocabulary import KnowledgeTransferDocument
from emails.render import render
from emails.samples import sample_facts, sample_recipient
from settings import Settings
from workflows.engagement import EngagementWorkflow

WORKFLOW_ID_PREFIX = "engagement-"


class CliError(Exception):
    """A refusal to show the person, without a traceback."""


def workflow_id(engagement: str) -> str:
    return engagement if engagement.startswith(WORKFLOW_ID_PREFIX) else WORKFLOW_ID_PREFIX + engagement


async def connect() -> Client:
    from worker import connect as worker_connect

    return await worker_connect(Settings())


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


def _command_models(args: argparse.Namespace) -> tuple[str, BaseModel]:
    actor: str = args.actor
    name = args.command
    if name == "nda-signed":
        return "record_nda_signed", RecordNdaSigned(actor=actor, signed_by=args.signed_by)
    if name == "add-engineer":
        engineer = EngineerSpec(
            name=args.name,
            email=args.email,
            role=args.role,
            production_access=args.production,
            jurisdiction=args.jurisdiction,
        )
        return "add_engineer", AddEngineer(actor=actor, engineer=engineer)
    if name == "remove-engineer":
        return "remove_engineer", RemoveEngineer(actor=actor, email=args.email)
    if name == "change-role":
        return "change_role", ChangeRole(
            actor=actor, email=args.email, role=args.role, production_access=args.production
        )
    if name == "record-check":
        return "record_check_result", RecordCheckResult(
            actor=actor, email=args.email, outcome=args.outcome, notes=args.notes
        )
    if name == "give-notice":
        return "give_notice", GiveNotice(actor=actor, given_by=args.given_by, reason=args.reason)
    if name == "move-end-date":
        return "move_end_date", MoveEndDate(actor=actor, end_date=args.end_date, reason=args.reason)
    if name == "record-document":
        return "record_document", RecordDocument(actor=actor, document=args.document, location=args.location)
    if name == "schedule-session":
        return "schedule_session", ScheduleSession(
            actor=actor,
            session_id=args.session_id,
            title=args.title,
            starts_at=args.starts_at,
            duration=timedelta(minutes=args.minutes),
        )
    if name == "session-held":
        return "record_session_held", RecordSessionHeld(actor=actor, session_id=args.session_id, notes=args.notes)
    if name == "ask":
        return "ask_question", AskQuestion(actor=actor, question_id=args.question_id, text=args.text)
    if name == "answer":
        return "answer_question", AnswerQuestion(actor=actor, question_id=args.question_id, answer=args.text)
    if name == "review-access":
        return "request_access_review", RequestAccessReview(actor=actor)
    if name == "revoke-now":
        return "revoke_access_now", RevokeAccessNow(actor=actor, email=args.email, reason=args.reason)
    if name == "restore-access":
        return "restore_access", RestoreAccess(actor=actor, email=args.email)
    if name == "reschedule-session":
        duration = timedelta(minutes=args.minutes) if args.minutes else None
        return "reschedule_session", RescheduleSession(
            actor=actor, session_id=args.session_id, starts_at=args.starts_at, duration=duration
        )
    if name == "cancel-session":
        return "cancel_session", CancelSession(actor=actor, session_id=args.session_id, reason=args.reason)
    if name == "cancel":
        return "cancel_engagement", CancelEngagement(actor=actor, reason=args.reason)
    raise CliError(f"unknown command {name}")


async def send_command(client: Client, engagement: str, update: str, command: BaseModel) -> Ack:
    handle = client.get_workflow_handle(workflow_id(engagement))
    try:
        return await handle.execute_update(update, command, result_type=Ack)  # type: ignore[no-any-return]
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


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def format_status(view: StatusView) -> str:
    t = view.timeline
    state = "settled" if view.settled else f"converging ({view.pending_effects} step(s) pending)"
    lines = [
        f"{view.contract_id} · {view.client} · {view.engagement_type.replace('_', ' ')}",
        f"phase: {view.phase.value}" + (f" ({view.cancelled_reason})" if view.cancelled_reason else ""),
        f"state: {state}" + (" · ALL ACCESS SUSPENDED (emergency)" if view.access_suspended else ""),
        "",
        "timeline",
        f"  contract signed   {_when(t.contract_signed_at)}",
        f"  NDA signed        {_when(t.nda_signed_at)}",
        f"  notice given      {_when(t.notice_given_at)}",
        f"  end date          {_when(t.end_date)}",
        f"  transition ends   {_when(t.transition_ends_at)}",
        f"  closed            {_when(t.closed_at)}",
    ]
    if view.next_deadline:
        lines.append(f"  next deadline     {_when(view.next_deadline.at)}  {view.next_deadline.label}")
    if view.last_access_review_at:
        lines.append(f"  last access review {_when(view.last_access_review_at)}")
    lines += ["", "engineers"]
    for e in view.engineers:
        state = "removed" if e.removed else ("active" if e.identity_active else "no active identity")
        state += ", suspended (emergency)" if e.suspended else ""
        groups = ", ".join(e.groups) or "no groups"
        lines.append(f"  {e.name} <{e.email}> {e.role}, check {e.check.value}, {state}: {groups}")
    lines += ["", "knowledge transfer"]
    for d in view.documents:
        lines.append(f"  {d.name.value:<30} {'delivered ' + _when(d.delivered_at) if d.delivered_at else 'missing'}")
    lines += ["", "handover sessions"]
    lines += [f"  {s.session_id}: {s.title} at {_when(s.starts_at)} ({s.status})" for s in view.sessions] or ["  none"]
    if view.delivery_problems:
        lines += ["", "emails that will not arrive"]
        lines += [
            f"  {p.kind} to {p.recipient}: {p.event} ({p.reason or 'no reason given'})" for p in view.delivery_problems
        ]
    lines += ["", "questions"]
    lines += [f"  {q.question_id}: {'answered' if q.answer else 'open'} · {q.text}" for q in view.questions] or [
        "  none"
    ]
    return "\n".join(lines)


def preview_email(
    spec: EngagementSpec, kind: EmailKind, recipient_email: str | None, output: str, settings: Settings
) -> str:
    """One email of the spec rendered from representative facts (``sample_facts``), never sent."""
    if recipient_email is None:
        recipient = sample_recipient(kind, spec)
    else:
        known = {p.email.lower(): p for p in people(spec)}
        found = known.get(recipient_email.lower())
        if found is None:
            raise CliError(f"{recipient_email} is not a contact or engineer of {spec.contract_id}")
        recipient = found
    organizer = Recipient(name=settings.email_from_name, email=settings.email_from)
    rendered = render(kind, sample_facts(kind, spec), recipient, organizer=organizer, stamped_at=datetime.now(UTC))
    if output == "html":
        return rendered.html
    message = OutgoingEmail.rendered("preview", kind.value, recipient, rendered)
    if output == "eml":
        return mime_message(message, settings.email_from, settings.email_from_name).as_string()
    lines = [
        f"From: {settings.email_from_name} <{settings.email_from}>",
        f"To: {recipient.name} <{recipient.email}>",
        f"Subject: {rendered.subject}",
        *(f"Attachment: {a.filename} ({a.mime_type}, {len(a.content)} bytes)" for a in rendered.attachments),
        "",
        rendered.text,
    ]
    return "\n".join(lines) + "\n"


def _datetime(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone, e.g. 2027-03-01T17:00:00Z")
    return moment.astimezone(UTC)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="engagement", description=__doc__)
    root.add_argument("--actor", default=os.environ.get("ENGAGEMENT_ACTOR") or getpass.getuser(), help="who acts")
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a spec file without starting anything")
    p.add_argument("spec", type=Path)
    p = sub.add_parser("start", help="start the engagement of a signed contract from its spec")
    p.add_argument("spec", type=Path)
    p = sub.add_parser("status", help="phase, timeline, engineers and their access, handover")
    p.add_argument("engagement", help="contract id or workflow id")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list", help="every engagement and its state")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("nda-signed", help="record the NDA as signed")
    p.add_argument("engagement")
    p.add_argument("--signed-by", required=True)
    p = sub.add_parser("add-engineer")
    p.add_argument("engagement")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True)
    p.add_argument("--jurisdiction", required=True, help="ISO country code, e.g. PT")
    p.add_argument("--production", action="store_true", help="needs production access")
    p = sub.add_parser("remove-engineer")
    p.add_argument("engagement")
    p.add_argument("email")
    p = sub.add_parser("change-role")
    p.add_argument("engagement")
    p.add_argument("email")
    p.add_argument("role")
    p.add_argument("--production", action=argparse.BooleanOptionalAction, default=None)
    p = sub.add_parser("record-check", help="record a background check result")
    p.add_argument("engagement")
    p.add_argument("email")
    p.add_argument("outcome", choices=["cleared", "failed"])
    p.add_argument("--notes")
    p = sub.add_parser("give-notice")
    p.add_argument("engagement")
    p.add_argument("--by", dest="given_by", choices=["client", "firm"], required=True)
    p.add_argument("--reason")
    p = sub.add_parser("move-end-date")
    p.add_argument("engagement")
    p.add_argument("end_date", type=_datetime, help="ISO 8601 with a time zone")
    p.add_argument("--reason")
    p = sub.add_parser("record-document")
    p.add_argument("engagement")
    p.add_argument("document", choices=[d.value for d in KnowledgeTransferDocument])
    p.add_argument("location")
    p = sub.add_parser("schedule-session")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("title")
    p.add_argument("starts_at", type=_datetime)
    p.add_argument("--minutes", type=int, default=60)
    p = sub.add_parser("session-held")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("--notes")
    p = sub.add_parser("ask", help="record a transition-window question")
    p.add_argument("engagement")
    p.add_argument("question_id")
    p.add_argument("text")
    p = sub.add_parser("answer")
    p.add_argument("engagement")
    p.add_argument("question_id")
    p.add_argument("text")
    p = sub.add_parser("review-access", help="reconcile the IAM with the policy now")
    p.add_argument("engagement")
    p = sub.add_parser("revoke-now", help="emergency: revoke one engineer's access, or everyone's, at once")
    p.add_argument("engagement")
    p.add_argument("--email", help="one engineer; everyone when omitted")
    p.add_argument("--reason", required=True)
    p = sub.add_parser("restore-access", help="lift an emergency revocation")
    p.add_argument("engagement")
    p.add_argument("--email", help="one engineer; the whole engagement when omitted")
    p = sub.add_parser("reschedule-session")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("starts_at", type=_datetime)
    p.add_argument("--minutes", type=int)
    p = sub.add_parser("cancel-session")
    p.add_argument("engagement")
    p.add_argument("session_id")
    p.add_argument("--reason")
    p = sub.add_parser("cancel")
    p.add_argument("engagement")
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
        spec = load_spec(args.spec)
        print(f"{args.spec}: valid spec for contract {spec.contract_id} ({len(spec.engineers)} engineers)")
        return 0
    if args.command == "preview-email":
        spec = load_spec(args.spec)
        sys.stdout.write(preview_email(spec, EmailKind(args.kind), args.recipient, args.output, settings))
        return 0
    if args.command == "start":
        spec = load_spec(args.spec)  # a bad spec is refused before anything is contacted
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
    update, command = _command_models(args)
    ack = await send_command(client, args.engagement, update, command)
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
