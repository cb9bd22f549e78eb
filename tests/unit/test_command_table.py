"""The phase table is the one source: the workflow's updates, the client's method references and the
README's command list all follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.decisions import refuse_in_a_full_run
from domain.decisions.change import ContinuingAsNew
from domain.phases import COMMANDS, markdown_table
from tests.unit.test_decisions import sample_command
from workflows.commands import UPDATES

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN, END = "<!-- commands:begin -->", "<!-- commands:end -->"


def test_every_command_is_sent_as_the_update_the_table_names() -> None:
    assert set(UPDATES) == {rule.command for rule in COMMANDS}
    for rule in COMMANDS:
        assert UPDATES[rule.command]._defn.name == rule.update


def test_the_readme_lists_the_commands_of_the_table() -> None:
    text = README.read_text()
    listed = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert listed == markdown_table(), (
        "regenerate with: python -c 'from domain.phases import markdown_table as t; print(t())'"
    )


def test_a_full_run_takes_only_the_commands_that_end_access() -> None:
    ending = {rule.update for rule in COMMANDS if rule.ends_access}
    assert ending == {"remove_engineer", "move_end_date", "certify_access", "revoke_access_now", "cancel_engagement"}
    for rule in COMMANDS:
        command = sample_command(rule.command)
        if rule.ends_access:
            refuse_in_a_full_run(command)  # taken: a burst cannot hold back a revocation or the end date
        else:
            with pytest.raises(ContinuingAsNew):
                refuse_in_a_full_run(command)
