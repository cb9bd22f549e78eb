"""The command line: every command, its arguments and its help. Plain Python only, so that
``--help`` and a usage error answer before anything heavy is imported."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.table import COMMANDS, DOCUMENTS, EMAIL_KINDS, PHASES

DESCRIPTION = """\
Start an engagement from a signed contract's spec, send it commands, find and read engagements.

Every command is a Temporal Update that the workflow validates: a bad or ill-timed command is
refused with the reason and changes nothing.

exit codes: 0 done; 1 refused (by the engagement or Temporal); 2 bad input, nothing sent;
3 Temporal unreachable or misconfigured; 4 no worker answered in time (status still prints
Temporal's own record); 5 unexpected error (ENGAGEMENT_DEBUG=1 for the traceback); 130 Ctrl-C."""


def moment(value: str) -> datetime:
    """An ISO 8601 moment with its time zone, as UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 moment, e.g. 2027-03-01T17:00:00Z") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs a time zone, e.g. 2027-03-01T17:00:00Z")
    return parsed.astimezone(UTC)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="engagement", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    root.add_argument(
        "--actor",
        default=os.environ.get("ENGAGEMENT_ACTOR") or None,
        help="who acts, recorded in the audit log with how it is known: the identity the Temporal connection "
        "authenticates wins (a different --actor is refused); else this name ($ENGAGEMENT_ACTOR); else your user name",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str) -> argparse.ArgumentParser:
        """A command of the phase table: its help says what it does and when it is legal."""
        summary, phases = COMMANDS[name]
        p = sub.add_parser(name, help=f"{summary} ({', '.join(phases)})", description=f"{summary}.")
        p.add_argument("engagement", help="contract id or workflow id")
        return p

    p = sub.add_parser("validate", help="check a spec file without starting anything", description="Check a spec.")
    p.add_argument("spec", type=Path, help="the spec file (YAML or JSON)")
    p = sub.add_parser("start", help="start the engagement of a signed contract from its spec")
    p.add_argument("spec", type=Path, help="the spec file (YAML or JSON)")
    p = sub.add_parser(
        "status",
        help="phase, timeline, engineers and their access, handover",
        description="Read an engagement from its worker; when no worker answers within CLI_WORKER_WAIT, "
        "print what Temporal itself records (run status, phase, dates) and exit 4.",
    )
    p.add_argument("engagement", help="contract id or workflow id")
    p.add_argument("--json", action="store_true", help="the same as JSON")
    p = sub.add_parser(
        "list",
        help="find engagements by phase, client, end date, attention",
        description="List engagements from Temporal's visibility store (search attributes); prints the "
        "query it used, which works as it is in the Temporal UI's filter.",
    )
    p.add_argument("--phase", choices=PHASES, help="only engagements in this phase")
    p.add_argument("--client", help="only this client (exact name)")
    p.add_argument("--ending-before", metavar="DATE", help="end date before DATE (2027-03-01 or a moment with zone)")
    p.add_argument("--needs-attention", action="store_true", help="only engagements where a person must act")
    p.add_argument("--json", action="store_true", help="the query and the rows as JSON")
    sub.add_parser(
        "setup-search-attributes",
        help="register the search attributes on the namespace (idempotent)",
        description="Register EngagementPhase, EngagementClient, ... on the namespace; those already "
        "there are left alone, one registered with another type is an error.",
    )

    p = command("nda-signed")
    p.add_argument("--signed-by", required=True, help="who signed for the client")
    p = command("add-engineer")
    p.add_argument("--name", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, help="a role of the spec's policy")
    p.add_argument("--jurisdiction", required=True, help="ISO country code, e.g. PT")
    p.add_argument("--production", action="store_true", help="needs production access")
    p = command("remove-engineer")
    p.add_argument("email")
    p = command("change-role")
    p.add_argument("email")
    p.add_argument("role")
    p.add_argument("--production", action=argparse.BooleanOptionalAction, default=None, help="production access")
    p = command("record-check")
    p.add_argument("email")
    p.add_argument("outcome", choices=["cleared", "failed"])
    p.add_argument("--notes")
    p = command("give-notice")
    p.add_argument("--by", dest="given_by", choices=["client", "firm"], required=True, help="who gives notice")
    p.add_argument("--reason")
    p = command("move-end-date")
    p.add_argument("end_date", type=moment, help="ISO 8601 with a time zone")
    p.add_argument("--reason")
    p = command("record-document")
    p.add_argument("document", choices=DOCUMENTS)
    p.add_argument("location", help="where it is (URL)")
    p = command("schedule-session")
    p.add_argument("session_id")
    p.add_argument("title")
    p.add_argument("starts_at", type=moment, help="ISO 8601 with a time zone")
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--location", help="a room or an address, shown in the invitation")
    p.add_argument("--join-url", help="the link to join online (https)")
    p = command("session-held")
    p.add_argument("session_id")
    p.add_argument("--notes")
    p = command("ask")
    p.add_argument("question_id")
    p.add_argument("text")
    p = command("answer")
    p.add_argument("question_id")
    p.add_argument("text")
    command("review-access")
    p = command("certify")
    p.add_argument("round", type=int, help="the certification round (see the review email)")
    p.add_argument("email", help="the engineer")
    p.add_argument("decision", choices=["keep", "revoke"])
    p = command("revoke-now")
    p.add_argument("--email", help="one engineer; everyone when omitted")
    p.add_argument("--reason", required=True)
    p = command("restore-access")
    p.add_argument("--email", help="one engineer; the whole engagement when omitted")
    p = command("reschedule-session")
    p.add_argument("session_id")
    p.add_argument("starts_at", type=moment, help="ISO 8601 with a time zone")
    p.add_argument("--minutes", type=int)
    p.add_argument("--location", help="a new room or address (unchanged when omitted)")
    p.add_argument("--join-url", help="a new join link (unchanged when omitted)")
    p = command("cancel-session")
    p.add_argument("session_id")
    p.add_argument("--reason")
    p = command("cancel")
    p.add_argument("--reason", required=True)
    p = command("retry-effect")
    p.add_argument("--effect-id", type=int, help="one parked effect; every parked effect when omitted")
    p.add_argument("--reason", required=True)
    p = command("drop-effect")
    p.add_argument("effect_id", type=int, help="the parked effect (see status)")
    p.add_argument("--reason", required=True)
    p = sub.add_parser(
        "adjudicate-check", help="decide on a screening provider's report to consider: engaged or adverse action"
    )
    p.add_argument("engagement", help="contract id or workflow id")
    p.add_argument("email", help="the engineer")
    p.add_argument("decision", choices=["engaged", "adverse_action"])
    p.add_argument("--reason", required=True, help="why (audited; the engineer is told of an adverse action)")
    p = sub.add_parser("preview-email", help="render an email for a spec from sample facts, without sending it")
    p.add_argument("spec", type=Path)
    p.add_argument("kind", choices=EMAIL_KINDS)
    p.add_argument("--recipient", metavar="EMAIL", help="a contact or engineer of the spec (default: the first)")
    p.add_argument("--format", dest="output", choices=["text", "html", "eml"], default="text")
    add_ops_parsers(sub)
    return root


OPS_COMMANDS = frozenset({"verify-audit", "alerts", "evidence"})
"""Commands that read the database, not Temporal (``cli/ops.py``)."""


def _duration(value: str) -> object:
    from datetime import timedelta

    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(timedelta).validate_python(value)
    except ValidationError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 duration such as PT15M") from None


def add_ops_parsers(sub: Any) -> None:
    """The three commands, on the CLI's subparsers."""
    p = sub.add_parser("verify-audit", help="verify the audit log's hash chain; exit 1 at the first broken link")
    p.add_argument("engagement", nargs="?", help="contract id or workflow id (every engagement when omitted)")
    p = sub.add_parser("alerts", help="list open admin alerts, or acknowledge one (--ack ID --reason TEXT)")
    p.add_argument("engagement", nargs="?", help="only this engagement's alerts")
    p.add_argument("--ack", type=int, metavar="ALERT_ID", help="acknowledge this alert (audited)")
    p.add_argument("--reason", help="why it is acknowledged (required with --ack)")
    p = sub.add_parser("evidence", help="write an evidence pack (JSON, CSV, HTML) for auditors")
    p.add_argument("engagement", nargs="?", help="contract id or workflow id")
    p.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    p.add_argument("--leavers-since", type=_date, metavar="DATE", help="every revocation since DATE")
    p.add_argument(
        "--revocation-sla", type=_duration, help="time to revoke promised (default: each spec's alert delay)"
    )


def _date(value: str) -> object:
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date such as 2027-01-31") from None
