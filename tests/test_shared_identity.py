"""Two engagements of one client (one IAM) that staff the same engineer share one identity: its
access is the union of what each live engagement grants, an engagement takes away only what no
other grants, every engagement's grants are in the ledger, changes to one identity are serialized,
and a revocation never waits for the database."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.engagement import EngagementActivities
from activities.payloads import AccessRequest
from adapters.alerts import AlertStore
from adapters.db import EngagementStore, create_engine
from adapters.scim import DirectoryPool, ScimDirectory
from adapters.shared_identities import SharedIdentities, SharedLookupUnavailable
from domain.commands import RemoveEngineer
from domain.spec import IamEndpoint, parse_spec
from domain.state import EngineerAccessReadBack
from domain.vocabulary import Phase
from tests.conftest import free_port
from tests.helpers import Harness
from tests.sample_spec import ALL_GROUPS, ROLES, spec_data

BOB = "bob@firm.example"
SRE = {"repo-read", "staging-admin", "prod-admin"}
ANALYST = {"ticketing"}


class Engagements:
    """Two engagements of one client, recorded, with activities on a worker of their own."""

    def __init__(self, store: EngagementStore, tenant: ScimDirectory, shared: SharedIdentities) -> None:
        self.store = store
        self.tenant = tenant
        self.shared = shared
        self.pool = DirectoryPool({})
        self.activities = EngagementActivities(store, self.pool, AlertStore(store.engine), shared)
        self.ids = [f"engagement-shared-{uuid.uuid4().hex[:8]}" for _ in range(2)]

    async def record(self) -> None:
        for engagement_id in self.ids:
            await self.store.record_engagement(
                engagement_id, parse_spec(spec_data(self.tenant.base_url)), datetime.now(UTC)
            )

    def request(
        self, n: int, groups: set[str], *, active: bool = True, expected: set[str] | None = None
    ) -> AccessRequest:
        return AccessRequest(
            engagement_id=self.ids[n],
            iam=IamEndpoint(scim_base_url=self.tenant.base_url),
            email=BOB,
            display_name="Bob Ops",
            active=active,
            groups=sorted(groups),
            scope=ALL_GROUPS,
            expected_groups=None if expected is None else sorted(expected),
            expected_active=None if expected is None else True,
            actor="test",
            reason="test",
            at=datetime.now(UTC),
        )

    async def apply(
        self, request: AccessRequest, activities: EngagementActivities | None = None
    ) -> EngineerAccessReadBack:
        readback: EngineerAccessReadBack = await ActivityEnvironment().run(
            (activities or self.activities).apply_access, request
        )
        return readback

    async def held(self) -> tuple[bool, set[str]]:
        """The truth, as the IAM owner sees it (every group read whole)."""
        user = await self.tenant.find_user(BOB)
        assert user is not None
        return user.active, {g for g in ALL_GROUPS if user.id in await self.tenant.members(g)}


@pytest_asyncio.fixture
async def two(store: EngagementStore, tenant: ScimDirectory) -> AsyncIterator[Engagements]:
    for group in ALL_GROUPS:
        await tenant.create_group(group)
    engagements = Engagements(store, tenant, SharedIdentities(store.engine))
    await engagements.record()
    yield engagements
    await engagements.pool.close()


async def test_each_engagement_takes_away_only_what_no_other_grants(two: Engagements) -> None:
    first = await two.apply(two.request(0, SRE))
    second = await two.apply(two.request(1, ANALYST | {"repo-read"}))
    assert await two.held() == (True, SRE | ANALYST)
    assert first.groups == sorted(SRE) and second.groups == sorted(ANALYST | {"repo-read"})

    # Both engagements' grants are in the ledger, the second's too (the IAM already held repo-read).
    for engagement_id, groups in zip(two.ids, (SRE, ANALYST | {"repo-read"}), strict=True):
        rows = await two.store.grants(engagement_id)
        assert {r.group_name for r in rows if r.revoked_at is None} == groups
    assert await two.shared.grants(two.tenant.base_url, BOB.upper()) == {
        two.ids[0]: (sorted(SRE), True),
        two.ids[1]: (sorted(ANALYST | {"repo-read"}), True),
    }

    # The first engagement ends: only what the second does not grant goes; the identity stays active.
    ended = await two.apply(two.request(0, set(), active=False, expected=SRE))
    assert await two.held() == (True, ANALYST | {"repo-read"})
    assert ended.groups == [] and not ended.identity_active
    assert ended.held_for_other_engagements == ["repo-read", "ticketing"] and ended.active_for_other_engagements
    assert ended.removed_groups == ["prod-admin", "staging-admin"]
    assert {r.group_name for r in await two.store.grants(two.ids[0]) if r.revoked_at is None} == set()

    # The second ends too: nothing is left, and the identity is deactivated.
    last = await two.apply(two.request(1, set(), active=False, expected=ANALYST | {"repo-read"}))
    assert await two.held() == (False, set())
    assert last.held_for_other_engagements == [] and not last.active_for_other_engagements


async def test_changes_to_one_identity_are_serialized(two: Engagements, store: EngagementStore) -> None:
    shared = SharedIdentities(store.engine)
    async with shared.claim(two.tenant.base_url, BOB, two.ids[0]):
        waiting = asyncio.create_task(two.apply(two.request(1, ANALYST)))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # it waits for the identity's lock, however long that takes
        assert await two.tenant.find_user(BOB) is None
    await waiting
    # Both at once: the IAM ends with the union, whichever came first.
    await asyncio.gather(two.apply(two.request(0, SRE)), two.apply(two.request(1, ANALYST)))
    assert await two.held() == (True, SRE | ANALYST)


@contextlib.asynccontextmanager
async def unanswering_database() -> AsyncIterator[str]:
    """A PostgreSQL address that accepts connections and never answers (a hung server)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", free_port())
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"postgresql+asyncpg://nobody@127.0.0.1:{port}/nowhere"
    finally:
        for writer in held:
            writer.transport.abort()
        server.close()


@pytest.mark.parametrize("outage", ["hung", "refused"])
async def test_a_revocation_never_waits_for_the_database(two: Engagements, outage: str) -> None:
    await two.apply(two.request(0, SRE))
    await two.apply(two.request(1, SRE | ANALYST))
    async with contextlib.AsyncExitStack() as stack:
        url = (
            await stack.enter_async_context(unanswering_database())
            if outage == "hung"
            else f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/nowhere"
        )
        engine = create_engine(url)
        stack.push_async_callback(engine.dispose)
        down = SharedIdentities(engine, lookup_timeout_seconds=0.5)
        activities = EngagementActivities(two.store, two.pool, AlertStore(two.store.engine), down)
        with pytest.raises(SharedLookupUnavailable):
            async with down.claim(two.tenant.base_url, BOB, two.ids[0]):
                pass
        # A grant may wait for the database: it fails, and Temporal retries it.
        with pytest.raises(SharedLookupUnavailable):
            await two.apply(two.request(0, SRE | ANALYST, expected=SRE), activities)
        # A revocation does not: this engagement's access goes entirely, even what the other grants.
        revoked = await two.apply(two.request(0, set(), active=False, expected=SRE), activities)
    assert await two.held() == (False, set())
    assert revoked.shared_lookup_failed and revoked.groups == [] and not revoked.identity_active
    assert any(a.kind == "shared_lookup_failed" for a in await AlertStore(two.store.engine).alerts(two.ids[0]))
    # Once the database is back, the other engagement's next convergence restores what it grants.
    await two.apply(two.request(1, SRE | ANALYST, expected=set()))
    assert await two.held() == (True, SRE | ANALYST)


async def test_two_engagements_of_one_client_staff_the_same_engineer(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    """The whole workflow: one client, one IAM, two engagements, Bob on both."""
    first = await harness.start(harness.spec())
    bob_only = [e.model_dump(mode="json") for e in harness.spec().engineers if e.email == BOB]
    second = await harness.start(harness.spec(engineers=bob_only, roles={"sre": ROLES["sre"]}))
    await asyncio.gather(harness.drive_to(first, Phase.DELIVERY), harness.drive_to(second, Phase.DELIVERY))
    assert (await harness.iam(BOB)).groups == SRE
    for handle in (first, second):
        assert {g.group_name for g in await harness.store.grants(handle.id) if g.engineer_email == BOB} == SRE

    await harness.update(first, RemoveEngineer(actor="erin", email=BOB))
    view = await harness.settle(first, Phase.DELIVERY)
    bob = await harness.iam(BOB)
    assert bob.active and bob.groups == SRE  # the second engagement still grants all of it
    assert not next(e for e in view.engineers if e.email == BOB).identity_active

    await harness.update(second, RemoveEngineer(actor="erin", email=BOB))
    await harness.settle(second, Phase.DELIVERY)
    bob = await harness.iam(BOB)
    assert not bob.active and bob.groups == set()
