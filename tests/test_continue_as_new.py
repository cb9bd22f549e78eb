"""Delivery runs for years: continue-as-new keeps history bounded and loses no engineer or command."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore
from adapters.scim import ScimDirectory
from domain.commands import (
    AddEngineer,
    ChangeRole,
    RecordCheckResult,
    RecordNdaSigned,
    RemoveEngineer,
    RequestAccessReview,
)
from domain.spec import EngineerSpec
from domain.vocabulary import Phase
from tests.devserver import dev_server, requires_temporal
from tests.helpers import Harness

__all__ = ["dev_server"]  # a fixture, imported for pytest


def newcomer(n: int, role: str = "analyst") -> EngineerSpec:
    return EngineerSpec(name=f"Engineer {n}", email=f"e{n}@firm.example", role=role, jurisdiction="PT")


@requires_temporal
async def test_continue_as_new_in_delivery_keeps_every_engineer_and_command(
    dev_server: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    # On the dev server: the time-skipping test server (1.40) loses an update that races a
    # continue-as-new (it applies it to the run that just closed), which a real server does not.
    async with Harness.running(dev_server.client, store, tenant, tmp_path) as harness:
        await _bursts_across_runs(harness)


async def _bursts_across_runs(harness: Harness) -> None:
    handle = await harness.start(harness.spec(), history_limit=60)
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam"))
    await harness.settle(handle, Phase.ONBOARDING)
    for person in ("alice@firm.example", "bob@firm.example"):
        await harness.update(handle, RecordCheckResult(actor="hr", email=person, outcome="cleared"))
    await harness.settle(handle, Phase.DELIVERY)

    # Bursts of commands, each burst sent at once, so some land while a new run is being prepared.
    for n in range(1, 7):
        await asyncio.gather(
            harness.update(handle, AddEngineer(actor="m", engineer=newcomer(n))),
            harness.update(
                handle,
                ChangeRole(actor="m", email="carol@firm.example", role="developer" if n % 2 else "analyst"),
            ),
        )
        if n % 3 == 0:
            await harness.update(handle, RemoveEngineer(actor="m", email=f"e{n - 1}@firm.example"))
    await harness.update(handle, RequestAccessReview(actor="ian"))
    view = await harness.settle(handle, Phase.DELIVERY)

    assert view.runs > 1, "the workflow never continued as new"
    described = await handle.describe()
    assert described.run_id != handle.first_execution_run_id or view.runs > 1
    present = {e.email for e in view.engineers if not e.removed}
    assert present == {"alice@firm.example", "bob@firm.example", "carol@firm.example"} | {
        f"e{n}@firm.example" for n in (1, 3, 4, 6)
    }
    for n in (1, 3, 4, 6):
        identity = await harness.iam(f"e{n}@firm.example")
        assert identity.active and identity.groups == {"ticketing"}
    for n in (2, 5):
        identity = await harness.iam(f"e{n}@firm.example")
        assert not identity.active and identity.groups == set()
    carol = await harness.iam("carol@firm.example")
    assert carol.groups == {"ticketing"}  # six role changes, the last one (analyst) wins
    assert (await harness.iam("alice@firm.example")).groups == {"repo-write", "staging-deploy", "prod-readonly"}
    kinds = [r.kind for r in await harness.mail.outbox(handle.id)]
    # six newcomers announced to the managers and the IAM owner (managed outsourcing: three people)
    assert kinds.count("engineer_added") == 6 * 3
    assert kinds.count("engineer_removed") == 2 * 3
    assert kinds.count("role_changed") == 6 * 3  # every role change told, even those undone since
    assert kinds.count("access_review") >= 1
