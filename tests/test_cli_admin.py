"""What admins do with the CLI on a real dev server: register the search attributes, find
engagements by them (and only by what they typed), read an engagement when no worker runs, and get
one line and a documented exit code whatever goes wrong."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from adapters import search_attributes as sa
from tests.conftest import free_port
from tests.devserver import ROOT, Cli, address, dev_server, requires_temporal

RUN_EARLY = True  # one of the longest files: started first (tests/conftest.py)

__all__ = ["dev_server"]

pytestmark = requires_temporal


@workflow.defn(name="EngagementWorkflow")
class EndsAtOnce:
    """Stands in for the engagement's type name: ends in the phase it is given."""

    @workflow.run
    async def run(self, phase: str) -> None:
        workflow.upsert_search_attributes([sa.ENGAGEMENT_PHASE.value_set(phase)])


def attributes(phase: str, client: str, end: datetime | None = None, attention: bool = False) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.ENGAGEMENT_PHASE, phase),
        SearchAttributePair(sa.ENGAGEMENT_CLIENT, client),
        SearchAttributePair(sa.NEEDS_ATTENTION, attention),
    ]
    if end is not None:
        pairs.append(SearchAttributePair(sa.END_DATE, end))
    return TypedSearchAttributes(pairs)


async def listed(cli: Cli, *filters: str, expect: int) -> dict[str, Any]:
    """``list --json`` once visibility has caught up with ``expect`` rows (it is eventually consistent)."""
    deadline = time.monotonic() + 30
    while True:
        found: dict[str, Any] = (await cli.run("list", "--json", *filters)).json()
        if len(found["engagements"]) >= expect or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_admins_find_engagements_by_their_search_attributes(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client: Client = dev_server.client
    cli = Cli(address(dev_server), "postgresql+asyncpg://unused/none", tmp_path)
    setup = await cli.ok("setup-search-attributes")
    assert "added none" in setup.stdout, str(setup)  # the fixture registered them: idempotent
    registered = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace="default"))
    assert set(sa.declared()) <= set(registered.custom_attributes)

    tag = uuid.uuid4().hex[:8]
    quoted = f"O'Brien & Sons {tag}"
    idle_queue = f"nobody-{tag}"  # no worker: these stay running
    starts = {
        f"engagement-d-{tag}": attributes("delivery", quoted, datetime(2027, 3, 1, 17, tzinfo=UTC), attention=True),
        f"engagement-n-{tag}": attributes("notice", quoted, datetime(2027, 6, 1, tzinfo=UTC)),
        f"engagement-x-{tag}": attributes("delivery", f"Other {tag}"),
    }
    for wid, found in starts.items():
        await client.start_workflow(
            "EngagementWorkflow", "delivery", id=wid, task_queue=idle_queue, search_attributes=found
        )
    done_queue = f"done-{tag}"
    async with Worker(
        client, task_queue=done_queue, workflows=[EndsAtOnce], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        for phase in ("closed", "cancelled"):
            await client.execute_workflow(
                EndsAtOnce.run,
                phase,
                id=f"engagement-{phase}-{tag}",
                task_queue=done_queue,
                search_attributes=attributes("delivery", quoted),
            )
    await client.get_workflow_handle(f"engagement-n-{tag}").terminate(reason="test")

    mine = await listed(cli, "--client", quoted, expect=4)
    assert f"EngagementClient = 'O''Brien & Sons {tag}'" in mine["query"], mine["query"]
    states = {row["id"]: (row["status"], row["state"]) for row in mine["engagements"]}
    assert states == {
        f"engagement-d-{tag}": ("RUNNING", "delivery"),
        f"engagement-n-{tag}": ("TERMINATED", "terminated in notice"),
        f"engagement-closed-{tag}": ("COMPLETED", "closed"),
        f"engagement-cancelled-{tag}": ("COMPLETED", "cancelled"),
    }, states

    narrowed = await listed(
        cli, "--client", quoted, "--phase", "delivery", "--ending-before", "2027-04-01", "--needs-attention", expect=1
    )
    assert [row["id"] for row in narrowed["engagements"]] == [f"engagement-d-{tag}"], narrowed
    assert narrowed["engagements"][0]["end_date"] == "2027-03-01T17:00:00+00:00"

    # A value that tries to widen the query only ever matches a client of that exact name.
    injected = await cli.ok("list", "--client", f"x {tag}' OR WorkflowType = 'EngagementWorkflow")
    assert "no engagement matches" in injected.stdout, str(injected)
    human = await cli.ok("list", "--client", quoted)
    assert (
        human.stdout.startswith("query: WorkflowType = 'EngagementWorkflow'") and f"engagement-d-{tag}" in human.stdout
    )

    for bad in (["--client", "a\nb"], ["--client", "a\\b"], ["--ending-before", "2027-13-01"], ["--phase", "gone"]):
        refused = await cli.run("list", *bad)  # refused before any contact, in one line (usage: argparse's two)
        assert refused.code == 2 and "error: " in refused.stderr and "Traceback" not in refused.stderr, str(refused)

    # No worker polls idle_queue: status says so within CLI_WORKER_WAIT and answers from Temporal's record.
    cli.extra["TASK_QUEUE"] = idle_queue
    cli.extra["CLI_WORKER_WAIT"] = "PT2S"
    record = await cli.run("status", f"engagement-d-{tag}", "--json")
    assert record.code == 4, str(record)
    assert "Traceback" not in record.stderr
    shown = json.loads(record.stdout)
    assert shown["source"] == "temporal_record" and shown["phase"] == "delivery" and shown["needs_attention"] is True
    human_record = await cli.run("status", f"engagement-d-{tag}")
    assert human_record.code == 4 and "from Temporal's own record" in human_record.stdout, str(human_record)
    command = await cli.run("review-access", f"engagement-d-{tag}")
    assert command.code == 4 and "no worker answered within 2 s" in command.stderr, str(command)
    assert command.stderr.count("\n") == 1 and "Traceback" not in command.stderr


async def test_a_closed_pipe_ends_quietly(dev_server: WorkflowEnvironment, tmp_path: Path) -> None:
    """`list | head -0`: the reader is gone before the CLI writes a byte."""
    cli = Cli(address(dev_server), "postgresql+asyncpg://unused/none", tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "starter.py",
            "list",
            cwd=ROOT,
            env=cli.env(),
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0 and stderr == b"", stderr


async def test_temporal_unreachable_is_one_line_and_exit_3(tmp_path: Path) -> None:
    cli = Cli(f"127.0.0.1:{free_port()}", "postgresql+asyncpg://unused/none", tmp_path)
    for args in (("list",), ("status", "X-1"), ("nda-signed", "X-1", "--signed-by", "Sam")):
        outcome = await cli.run(*args)
        assert outcome.code == 3, str(outcome)
        assert (
            outcome.stderr.startswith("error: cannot reach Temporal at 127.0.0.1:") and outcome.stderr.count("\n") == 1
        )
