"""The CLI answers ``--help`` from plain Python: its copy of the domain's names must stay equal to
the domain, it must not load pydantic or Temporal to parse, and the visibility query it builds
holds a person's text inside one literal."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli import table
from cli.args import parser
from cli.engagements import STATUS_QUERY, WORKFLOW_TYPE
from cli.errors import CliError, Exit
from cli.query import BASE, Filters, literal, parse_day_or_moment, visibility_query
from domain.email_kinds import EmailKind
from domain.phases import COMMANDS
from domain.vocabulary import KnowledgeTransferDocument, Phase
from workflows.engagement import EngagementWorkflow

ROOT = Path(__file__).resolve().parents[2]


def test_the_help_table_is_the_domain_s() -> None:
    assert table.PHASES == tuple(p.value for p in Phase)
    assert table.DOCUMENTS == tuple(d.value for d in KnowledgeTransferDocument)
    assert table.EMAIL_KINDS == tuple(k.value for k in EmailKind)
    assert table.COMMANDS == {r.cli: (r.summary, tuple(p.value for p in Phase if p in r.phases)) for r in COMMANDS}


def test_the_cli_names_the_workflow_as_it_defines_itself() -> None:
    definition = EngagementWorkflow.__temporal_workflow_definition  # type: ignore[attr-defined]
    assert definition.name == WORKFLOW_TYPE
    assert STATUS_QUERY in definition.queries


def test_every_command_has_help_and_every_table_command_is_a_command() -> None:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    assert set(table.COMMANDS) <= set(helps)
    assert all(helps.values()), [name for name, text in helps.items() if not text]


def test_help_loads_neither_pydantic_nor_temporal() -> None:
    probe = "import sys, starter\ntry:\n    starter.main(['list', '--help'])\nexcept SystemExit:\n    pass\n"
    probe += (
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pydantic', 'temporalio', 'domain', 'asyncio'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_values_stay_inside_one_literal() -> None:
    assert literal("O'Brien & Sons") == "'O''Brien & Sons'"
    query = visibility_query(Filters(client="x' OR WorkflowType = 'EngagementWorkflow"))
    assert query == BASE + " AND EngagementClient = 'x'' OR WorkflowType = ''EngagementWorkflow'"
    for bad in ("a\nb", "a\u202eb", "'quoted'", "a\\b", "", "x" * 201):
        with pytest.raises(CliError) as refused:
            literal(bad)
        assert refused.value.code is Exit.BAD_INPUT


def test_every_filter_in_one_query() -> None:
    ending = parse_day_or_moment("2027-03-01")
    assert ending == datetime(2027, 3, 1, tzinfo=UTC)
    query = visibility_query(Filters("delivery", "Acme", ending, needs_attention=True))
    assert query == (
        BASE + " AND EngagementPhase = 'delivery' AND EngagementClient = 'Acme'"
        " AND EndDate < '2027-03-01T00:00:00Z' AND NeedsAttention = true"
    )
    for bad in ("2027-03-01T10:00", "1999-01-01", "tomorrow"):
        with pytest.raises(CliError):
            parse_day_or_moment(bad)
    with pytest.raises(CliError):
        visibility_query(Filters(phase="gone"))
