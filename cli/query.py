"""The visibility query ``list`` sends, built from validated filters: a person's text only ever
reaches Temporal inside one quoted, escaped literal, so a filter value cannot add a condition."""

from __future__ import annotations

import argparse
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from cli.errors import CliError, Exit
from cli.table import PHASES

BASE = "WorkflowType = 'EngagementWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
"""Every engagement, once: a run that continued as new is followed by the run that carries it on."""
MAX_VALUE = 200


@dataclass(frozen=True)
class Filters:
    phase: str | None = None
    client: str | None = None
    ending_before: datetime | None = None
    needs_attention: bool = False


def literal(value: str) -> str:
    """``value`` as a visibility-query string literal, its quotes doubled.

    Refuses what cannot be said safely: control and format characters (they would not be visible
    in the printed query), a quote at either end (some servers strip those from literals), and a
    backslash (no escaping of it matches on the server: Temporal 1.32's SQL visibility)."""
    if not value or len(value) > MAX_VALUE:
        raise CliError(f"a filter value must be 1 to {MAX_VALUE} characters", Exit.BAD_INPUT)
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in value):
        raise CliError("a filter value may not contain control or invisible format characters", Exit.BAD_INPUT)
    if value[0] in "'\"" or value[-1] in "'\"":
        raise CliError("a filter value may not start or end with a quote", Exit.BAD_INPUT)
    if "\\" in value:
        raise CliError("a filter value may not contain a backslash", Exit.BAD_INPUT)
    return "'" + value.replace("'", "''") + "'"


def parse_day_or_moment(value: str) -> datetime:
    """``2027-03-01`` (midnight UTC) or an ISO 8601 moment with its zone, in the years 2000 to 2199."""
    try:
        moment = (
            datetime.combine(date.fromisoformat(value), time(), UTC)
            if len(value) == 10
            else datetime.fromisoformat(value.replace("Z", "+00:00"))
        )
    except ValueError:
        raise CliError(
            f"{value!r} is not a date (2027-03-01) or a moment (2027-03-01T17:00:00Z)", Exit.BAD_INPUT
        ) from None
    if moment.tzinfo is None:
        raise CliError(f"{value!r} needs a time zone, e.g. 2027-03-01T17:00:00Z", Exit.BAD_INPUT)
    if not 2000 <= moment.year <= 2199:
        raise CliError("a date must be in the years 2000 to 2199", Exit.BAD_INPUT)
    return moment.astimezone(UTC)


def visibility_query(filters: Filters) -> str:
    """The query, exactly as it can be pasted into the Temporal UI's or CLI's list filter."""
    parts = [BASE]
    if filters.phase is not None:
        if filters.phase not in PHASES:
            raise CliError(f"unknown phase {filters.phase!r}; one of {', '.join(PHASES)}", Exit.BAD_INPUT)
        parts.append(f"EngagementPhase = '{filters.phase}'")
    if filters.client is not None:
        parts.append(f"EngagementClient = {literal(filters.client)}")
    if filters.ending_before is not None:
        stamp = filters.ending_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts.append(f"EndDate < '{stamp}'")
    if filters.needs_attention:
        parts.append("NeedsAttention = true")
    return " AND ".join(parts)


def list_query(args: argparse.Namespace) -> str:
    """The query of ``list``'s parsed filters."""
    ending = parse_day_or_moment(args.ending_before) if args.ending_before else None
    return visibility_query(Filters(args.phase, args.client, ending, args.needs_attention))
