"""The CLI's exit status is its real outcome, every time: 0 for success, 1 for a refusal, 2 for a bad
spec, and never the interpreter's teardown crash (134/139) of temporalio/sdk-python#300."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from adapters.scim import ScimDirectory
from tests.devserver import Cli, WorkerProcess, address, dev_server, gather_limited, requires_temporal
from tests.sample_spec import ALL_GROUPS, spec_data

__all__ = ["dev_server"]  # the fixture, imported to be visible here

RUNS = 8


async def test_validate_accepts_a_good_spec(tmp_path: Path) -> None:
    cli = Cli("127.0.0.1:9", "postgresql+asyncpg://127.0.0.1:9/none", tmp_path)  # validate contacts nothing
    path = cli.write_spec(spec_data())

    outcome = await cli.run("validate", str(path))

    assert outcome.code == 0, str(outcome)
    assert "valid spec" in outcome.stdout, str(outcome)


async def test_validate_names_the_bad_field(tmp_path: Path) -> None:
    cli = Cli("127.0.0.1:9", "postgresql+asyncpg://127.0.0.1:9/none", tmp_path)
    data = spec_data()
    data["engineers"][2]["role"] = "wizard"
    path = cli.write_spec(data)

    outcome = await cli.run("validate", str(path))

    assert outcome.code == 2, str(outcome)
    assert "engineers[2].role" in outcome.stderr and "wizard" in outcome.stderr, str(outcome)
    assert "Traceback" not in outcome.stderr
    assert outcome.stdout == ""


@requires_temporal
async def test_status_of_an_unknown_engagement_exits_1_every_time(
    dev_server: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    cli = Cli(address(dev_server), database_url, tmp_path)

    outcomes = await gather_limited([lambda: cli.run("status", "nonexistent-contract")] * RUNS)

    for outcome in outcomes:
        assert outcome.code == 1, str(outcome)
        assert "no engagement engagement-nonexistent-contract" in outcome.stderr, str(outcome)
        assert "Traceback" not in outcome.stderr


@requires_temporal
async def test_status_of_a_running_engagement_exits_0_every_time(
    dev_server: WorkflowEnvironment, database_url: str, tenant: ScimDirectory, tmp_path: Path
) -> None:
    for group in ALL_GROUPS:
        await tenant.create_group(group)
    cli = Cli(address(dev_server), database_url, tmp_path)
    spec = spec_data(tenant.base_url)
    contract = spec["contract_id"]
    path = cli.write_spec(spec)

    async with WorkerProcess.running(cli) as worker:
        await cli.ok("start", str(path))
        outcomes = await gather_limited([lambda: cli.run("status", contract)] * RUNS)
        assert await worker.stop() == 0, worker.output()

    for outcome in outcomes:
        assert outcome.code == 0, str(outcome)
        assert f"{contract} · Acme Corp" in outcome.stdout and "phase: awaiting_nda" in outcome.stdout, str(outcome)
