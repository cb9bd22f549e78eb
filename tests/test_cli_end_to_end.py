"""The whole engagement on the Temporal dev server, driven through the CLI as ops would, with the real
worker process, PostgreSQL and SCIM server: contract to closed in a few seconds of real time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from adapters.scim import ScimDirectory
from tests.devserver import Cli, WorkerProcess, address, dev_server, requires_temporal
from tests.sample_spec import ALL_GROUPS, spec_data

RUN_EARLY = True  # one of the longest files: started first (tests/conftest.py)

__all__ = ["dev_server"]  # the fixture, imported to be visible here

pytestmark = requires_temporal

ALICE, BOB, CAROL = "alice@firm.example", "bob@firm.example", "carol@firm.example"
SHORT = {
    "notice_period": "PT3S",
    "transition_window": "PT2S",
    "nda_reminder_interval": "PT1H",
    "nda_deadline": "P1D",
    "check_reminder_interval": "P1D",
    "handover_reminder_lead": "PT1S",
    "access_review_interval": "P1D",
}


def checks(view: dict[str, object]) -> dict[str, str]:
    engineers = view["engineers"]
    assert isinstance(engineers, list)
    return {e["email"]: e["check"] for e in engineers}


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    """Wait (bounded, in real time) for the visibility store to show what the workflow upserted."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.2)


async def test_engagement_contract_to_closed_through_the_cli(
    dev_server: WorkflowEnvironment, database_url: str, tenant: ScimDirectory, tmp_path: Path
) -> None:
    for group in ALL_GROUPS:  # the client's IAM owner created the policy's groups
        await tenant.create_group(group)
    cli = Cli(address(dev_server), database_url, tmp_path)
    spec = spec_data(tenant.base_url) | SHORT
    contract = spec["contract_id"]
    path = cli.write_spec(spec)

    async with WorkerProcess.running(cli) as worker:
        started = await cli.ok("start", str(path))
        assert f"started engagement-{contract}" in started.stdout

        again = await cli.run("start", str(path))
        assert again.code != 0, str(again)
        assert "already has an engagement" in again.stderr and "nothing was started" in again.stderr, str(again)

        view = await cli.status(contract)
        assert view["contract_id"] == contract and view["phase"] == "awaiting_nda"

        signed = await cli.ok("nda-signed", contract, "--signed-by", "Sam Signer")
        assert "phase: onboarding" in signed.stdout, str(signed)
        await cli.poll(
            contract,
            lambda v: checks(v)[ALICE] == "in_progress" and checks(v)[BOB] == "in_progress",
            "both production checks in progress",
        )

        await cli.ok("record-check", contract, ALICE, "cleared")
        await cli.ok("record-check", contract, BOB, "cleared")
        view = await cli.poll(contract, lambda v: v["phase"] == "delivery", "in delivery")
        assert checks(view) == {ALICE: "cleared", BOB: "cleared", CAROL: "not_required"}
        alice = await tenant.read_identity(ALICE, frozenset(ALL_GROUPS))
        assert alice.active and "prod-readonly" in alice.groups

        # The engagement keeps its own search attributes current: an admin finds it by its phase now.
        async def listed_in(phase: str) -> bool:
            rows = (await cli.ok("list", "--phase", phase, "--json")).json()["engagements"]
            return any(r["id"] == f"engagement-{contract}" and r["phase"] == phase for r in rows)

        await until(lambda: listed_in("delivery"), "found by EngagementPhase=delivery (visibility is eventual)")

        # Questions belong to the transition window: refused now, with the reason, and nothing changes.
        refused = await cli.run("ask", contract, "q1", "Where is the DR plan?")
        assert refused.code == 1, str(refused)
        assert "refused" in refused.stderr and "not allowed in phase delivery" in refused.stderr, str(refused)
        assert "Traceback" not in refused.stderr
        assert (await cli.status(contract))["questions"] == []

        notice = await cli.ok("give-notice", contract, "--by", "client")
        assert "phase: notice" in notice.stdout, str(notice)
        view = await cli.poll(contract, lambda v: v["phase"] == "closed", "closed", within=60)
        await until(lambda: listed_in("closed"), "found by EngagementPhase=closed")
        assert view["timeline"]["closed_at"] is not None
        assert view["revocation"] is not None

        human = await cli.ok("status", contract)
        assert "phase: closed" in human.stdout, str(human)
        listed = (await cli.ok("list", "--json")).json()
        row = next(r for r in listed["engagements"] if r["id"] == f"engagement-{contract}")
        assert (row["status"], row["client"]) == ("COMPLETED", spec["client"]["name"]), row

        assert await worker.stop() == 0, worker.output()

    # What the client's IAM really holds: nothing for anyone.
    for email in (ALICE, BOB, CAROL):
        identity = await tenant.read_identity(email, frozenset(ALL_GROUPS))
        assert identity.groups == frozenset(), (email, identity)
        assert not identity.active, (email, identity)
