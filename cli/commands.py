"""From the parsed command line to the command model the engagement's Update takes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from cli.errors import CliError
from domain import commands as c
from domain.phases import BY_CLI
from domain.spec import EngineerSpec


def _by_name(model: type[BaseModel], args: argparse.Namespace) -> dict[str, Any]:
    """The model's fields that the arguments give under the field's own name."""
    given = vars(args)
    return {name: given[name] for name in model.model_fields if name in given}


def _engineer(args: argparse.Namespace) -> dict[str, Any]:
    return {"engineer": EngineerSpec(**_by_name(EngineerSpec, args), production_access=args.production)}


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
    derive = _NOT_BY_NAME.get(args.command)
    return rule.command(**_by_name(rule.command, args), **(derive(args) if derive else {}))
