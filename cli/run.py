"""Each command, once the command line is parsed: the only module of the CLI that loads the domain
and the Temporal client."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime

from adapters import search_attributes
from cli.args import OPS_COMMANDS
from cli.commands import command_model
from cli.engagements import (
    Record,
    WorkerSilent,
    connect,
    describe,
    find,
    read_status,
    send_command,
    start_engagement,
    workflow_id,
)
from cli.errors import CliError, Exit
from domain.spec import load_spec
from domain.views import format_status
from settings import Settings

COLUMNS = ("ENGAGEMENT", "STATE", "CLIENT", "END DATE", "NEXT DEADLINE", "!")


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def list_table(records: list[Record]) -> str:
    rows = [COLUMNS] + [
        (
            r.id,
            r.state,
            r.client or "-",
            _day(r.end_date),
            f"{_day(r.next_deadline)} {r.next_deadline_label or ''}".strip() if r.next_deadline else "-",
            "!" if r.needs_attention else "",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def record_text(record: Record, wait: float) -> str:
    lines = [
        f"{record.id}: from Temporal's own record; no worker answered within {wait:g} s, "
        "so engineers, documents and sessions are not shown",
        f"  run:            {record.status}"
        + (f" (closed {record.closed_at.isoformat()})" if record.closed_at else ""),
        f"  phase:          {record.phase or 'not recorded'}",
        f"  client:         {record.client or 'not recorded'} ({record.engagement_type or '?'})",
        f"  end date:       {record.end_date.isoformat() if record.end_date else 'not set'}",
        "  next deadline:  "
        + (
            f"{record.next_deadline.isoformat()} {record.next_deadline_label or ''}" if record.next_deadline else "none"
        ),
        f"  needs attention: {'yes' if record.needs_attention else 'no'}",
    ]
    return "\n".join(lines)


def _actor(settings: Settings, declared: str | None) -> tuple[str, str]:
    """Who sends a command, and how that is known (the connection's identity, --actor, the OS user)."""
    from adapters.actor import ActorConflict, connection_identity, resolve_actor
    from adapters.temporal_connection import TemporalConnectionError, connect_config

    try:
        identity = connection_identity(connect_config(settings))
    except TemporalConnectionError:
        identity = None  # the connection itself will say what is wrong with its settings
    try:
        return resolve_actor(identity, declared, getpass.getuser())
    except ActorConflict as error:
        raise CliError(str(error), Exit.BAD_INPUT) from None


async def _adjudicate(args: argparse.Namespace, settings: Settings) -> int:
    """A person's decision on a provider report to consider (the check's own Update)."""
    from temporalio.exceptions import ApplicationError

    from domain.screening import Adjudicate
    from workflows.screening_commands import CheckNotFound, adjudicate

    actor, _ = _actor(settings, args.actor)
    client = await connect(settings)
    command = Adjudicate(actor=actor, decision=args.decision, reason=args.reason)
    try:
        decided = await adjudicate(client, workflow_id(args.engagement), args.email, command)
    except (CheckNotFound, ApplicationError) as error:
        raise CliError(f"refused: {error}") from None
    print(f"adjudicated: {decided.stage}")
    return Exit.OK


async def run(args: argparse.Namespace) -> int:
    settings = Settings()
    wait = settings.cli_worker_wait
    if args.command == "validate":
        spec = load_spec(args.spec, allow_short_durations=settings.allow_short_durations)
        print(f"{args.spec}: valid spec for contract {spec.contract_id} ({len(spec.engineers)} engineers)")
        return Exit.OK
    if args.command == "preview-email":
        from domain.email_kinds import EmailKind, Recipient
        from emails.preview import UnknownRecipient, preview_email

        spec = load_spec(args.spec, allow_short_durations=True)  # a preview starts nothing
        try:
            sender = Recipient(name=settings.email_from_name, email=settings.email_from)
            preview = preview_email(spec, EmailKind(args.kind), args.recipient, args.output, sender)
        except UnknownRecipient as error:
            raise CliError(str(error), Exit.BAD_INPUT) from None
        sys.stdout.write(preview)
        return Exit.OK
    if args.command in OPS_COMMANDS:
        from cli.ops import OpsError
        from cli.ops import run as run_ops

        try:
            return await run_ops(args, settings)
        except OpsError as error:
            raise CliError(str(error), Exit.BAD_INPUT) from None
    if args.command == "start":
        spec = load_spec(args.spec, allow_short_durations=settings.allow_short_durations)  # refused before any contact
        client = await connect(settings)
        from domain.screening import with_firm_provider

        spec = with_firm_provider(spec, settings.screening_provider)  # a running engagement never switches
        handle = await start_engagement(client, spec, settings.task_queue)
        print(f"started {handle.id}")
        return Exit.OK
    if args.command == "adjudicate-check":
        return await _adjudicate(args, settings)
    command = None
    if args.command not in {"status", "list", "setup-search-attributes"}:
        args.actor, source = _actor(settings, args.actor)
        command = command_model(args).model_copy(update={"actor_source": source})
    client = await connect(settings)
    if args.command == "setup-search-attributes":
        try:
            added, present = await search_attributes.register(client, client.namespace)
        except search_attributes.SearchAttributeConflict as error:
            raise CliError(str(error)) from None
        print(f"namespace {client.namespace}: added {', '.join(added) or 'none'}; already there: {len(present)}")
        return Exit.OK
    if args.command == "list":
        query: str = args.query  # built and checked by starter.main before any contact
        records = await find(client, query)
        if args.json:
            print(json.dumps({"query": query, "engagements": [r.as_json() for r in records]}, indent=2))
        else:
            print(f"query: {query}")
            print(list_table(records) if records else "no engagement matches")
        return Exit.OK
    if args.command == "status":
        try:
            view = await read_status(client, args.engagement, wait)
        except WorkerSilent:
            record = await describe(client, args.engagement)
            if args.json:
                print(json.dumps({"source": "temporal_record", **record.as_json()}, indent=2))
            else:
                print(record_text(record, wait.total_seconds()))
            return Exit.NO_WORKER
        print(view.model_dump_json(indent=2) if args.json else format_status(view))
        return Exit.OK
    assert command is not None
    try:
        ack = await send_command(client, args.engagement, command, wait)
    except WorkerSilent:
        raise CliError(
            f"no worker answered within {wait.total_seconds():g} s; the command was not confirmed (a worker "
            f"that starts later may still apply it: check `status`). Is `python worker.py` running on task "
            f"queue {settings.task_queue!r}?",
            Exit.NO_WORKER,
        ) from None
    print(f"{ack.accepted} (phase: {ack.phase.value})")
    return Exit.OK
