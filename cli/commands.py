"""From the parsed command line to the command model the engagement's Update takes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cli.errors import CliError
from domain import commands as c
from domain.phases import BY_CLI
from domain.spec import EngineerSpec


def _engineer(args: argparse.Namespace) -> dict[str, Any]:
    engineer = EngineerSpec(
        name=args.name,
        email=args.email,
        role=args.role,
        production_access=args.production,
        jurisdiction=args.jurisdiction,
    )
    return {"engineer": engineer}


_NOT_BY_NAME: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "add-engineer": _engineer,
    "change-role": lambda args: {"production_access": args.production},
    "answer": lambda args: {"answer": args.text},
    "schedule-session": lambda args: {"duration": timedelta(minutes=args.minutes)},
    "reschedule-session": lambda args: {"duration": timedelta(minutes=args.minutes) if args.minutes else None},
}
"""The fields a command's arguments do not give under the field's own name."""


def command_model(args: argparse.Namespace) -> c.Command:
    """The command of the phase table's row for ``args.command``: every field the arguments name
    (``--actor`` included), and those that ``_NOT_BY_NAME`` derives."""
    rule = BY_CLI.get(args.command)
    if rule is None:
        raise CliError(f"unknown command {args.command}")
    given = vars(args)
    fields = {name: given[name] for name in rule.command.model_fields if name in given}
    derive = _NOT_BY_NAME.get(args.command)
    return rule.command(**fields, **(derive(args) if derive else {}))
