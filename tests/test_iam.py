"""Least privilege through the client's IAM, and revocation that is proven — against the real
scim2-server on loopback (a strict one, and one speaking Entra's dialect)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.engagement import EngagementActivities
from activities.payloads import AccessRequest
from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.scim import DirectoryPool, ScimDirectory
from domain.commands import RemoveEngineer, RestoreAccess, RevokeAccessNow
from domain.spec import IamEndpoint, parse_spec
from domain.vocabulary import Phase
from tests.conftest import ScimServer, free_port
from tests.helpers import Harness
from tests.sample_spec import ALL_GROUPS, ROLES, spec_data
from tests.tcp_proxy import TcpProxy

ALICE, BOB, CAROL = "alice@firm.example", "bob@firm.example", "carol@firm.example"
EVERYONE = (ALICE, BOB, CAROL)


async def nothing_left(harness: Harness, *people: str) -> None:
    for person in people:
        identity = await harness.iam(person)
        assert identity.groups == set() and not identity.active, (person, identity)


async def test_drift_added_by_hand_is_removed_and_missing_grants_restored_by_the_next_review(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    await harness.drive_to(handle, Phase.DELIVERY)
    tenant = harness.tenant
    carol = await tenant.find_user(CAROL)
    alice = await tenant.find_user(ALICE)
    assert carol is not None and alice is not None
    await tenant.add_member("prod-admin", carol.id)  # somebody at the client, by hand
    await tenant.remove_member("repo-write", alice.id)  # and a grant lost on their side

    await env.sleep(timedelta(days=30, hours=1))  # the scheduled review (every 30 days)
    view = await harness.settle(handle, Phase.DELIVERY)
    assert view.last_access_review_at is not None
    assert (await harness.iam(CAROL)).groups == {"ticketing"}
    assert (await harness.iam(ALICE)).groups == {"repo-write", "staging-deploy", "prod-readonly"}

    changes = [a for a in await harness.store.audit_entries(handle.id) if a.action == "access_changed"]
    review = [a.details for a in changes if a.details["reason"] == "access review"]
    assert {(d["engineer"], tuple(d["revoked"]), tuple(d["granted"])) for d in review} == {
        (CAROL, ("prod-admin",), ()),
        (ALICE, (), ("repo-write",)),
    }
    report = [r for r in await harness.mail.outbox(handle.id) if r.kind == "access_review"]
    assert report and "2 engineers corrected" in report[0].subject
    assert "prod-admin" in report[0].body_text


@pytest.mark.parametrize("phase", [Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE])
async def test_emergency_revocation_of_everyone_in_any_phase(
    env: WorkflowEnvironment, harness: Harness, phase: Phase
) -> None:
    handle = await harness.start(harness.spec())
    await harness.drive_to(handle, phase)
    assert (await harness.iam(CAROL)).active
    ack = await harness.update(handle, RevokeAccessNow(actor="ciso", reason="breach"))
    assert ack.phase is phase
    view = await harness.settle(handle, phase)
    await nothing_left(harness, *EVERYONE)
    assert view.access_suspended
    assert all(not e.groups and not e.identity_active for e in view.engineers)
    emails = [r for r in await harness.mail.outbox(handle.id) if r.kind == "emergency_revocation"]
    assert {r.recipient for r in emails} >= {"ian@acme.example", "erin@acme.example"}
    grants = await harness.store.grants(handle.id)
    assert grants and all(g.revoked_at is not None for g in grants)
    assert all(g.revoke_evidence["active"] is False for g in grants)
    assert {g.revoked_by for g in grants} == {"ciso"}  # the ledger names who asked


async def test_emergency_revocation_of_one_engineer_and_its_restoration(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    await harness.drive_to(handle, Phase.DELIVERY)
    await harness.update(handle, RevokeAccessNow(actor="ciso", email=BOB, reason="lost laptop"))
    view = await harness.settle(handle, Phase.DELIVERY)
    await nothing_left(harness, BOB)
    assert (await harness.iam(ALICE)).groups == {"repo-write", "staging-deploy", "prod-readonly"}
    assert next(e for e in view.engineers if e.email == BOB).suspended

    await harness.update(handle, RestoreAccess(actor="ciso", email=BOB))
    await harness.settle(handle, Phase.DELIVERY)
    assert (await harness.iam(BOB)).groups == {"repo-read", "staging-admin", "prod-admin"}


async def test_emergency_revocation_is_accepted_before_the_nda_and_leaves_nothing(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RevokeAccessNow(actor="ciso", reason="precaution"))
    view = await harness.settle(handle, Phase.AWAITING_NDA)
    assert view.access_suspended
    for person in EVERYONE:
        assert not (await harness.iam(person)).exists


async def test_revocation_through_an_iam_outage_is_retried_alerted_and_proven(
    env: WorkflowEnvironment, harness: Harness, scim_server: ScimServer
) -> None:
    proxy = TcpProxy(scim_server.port, free_port())
    await proxy.up()
    tenant_path = harness.tenant.base_url.rsplit("/", 1)[1]
    spec = harness.spec(iam={"scim_base_url": f"http://127.0.0.1:{proxy.port}/{tenant_path}"})
    handle = await harness.start(spec)
    try:
        await harness.drive_to(handle, Phase.NOTICE)
        granted = await harness.store.grants(handle.id)
        assert granted and all(g.revoked_at is None for g in granted)

        await proxy.down()  # the client's IAM goes away just before the end date
        await env.sleep(timedelta(days=60, minutes=1))
        for _ in range(60):  # skip through the retries until the alert is raised
            if await harness.alerts(handle):
                break
            await env.sleep(timedelta(minutes=5))
        alerts = await harness.alerts(handle)
        assert alerts and {a.kind for a in alerts} == {"revocation_unconfirmed"}
        # Nothing is recorded as revoked without the IAM's read-back...
        assert all(g.revoked_at is None for g in await harness.store.grants(handle.id))
        view = await harness.status(handle)
        assert view.phase is Phase.TRANSITION and not view.settled
        assert view.revocation is None
        for person in EVERYONE:  # ...and the IAM indeed still holds the grants.
            assert (await harness.iam(person)).groups

        await proxy.up()  # the IAM is back: the retries land
        for _ in range(60):
            view = await harness.status(handle)
            if view.settled and view.revocation is not None:
                break
            await env.sleep(timedelta(minutes=2))
        view = await harness.settle(handle, Phase.TRANSITION)
        assert view.revocation and all(not r.groups and not r.identity_active for r in view.revocation.engineers)
        await nothing_left(harness, *EVERYONE)
        assert all(g.revoked_at is not None for g in await harness.store.grants(handle.id))

        await env.sleep(timedelta(days=31))
        summary = await handle.result()
        assert summary.phase is Phase.CLOSED
        assert (summary.remaining_grants, summary.active_identities) == (0, 0)
    finally:
        await proxy.down()


async def test_delete_mode_removes_identities_at_the_end(env: WorkflowEnvironment, harness: Harness) -> None:
    spec = harness.spec(iam={"scim_base_url": harness.tenant.base_url, "deprovision": "delete"})
    handle = await harness.start(spec)
    await harness.drive_to(handle, Phase.DELIVERY)
    await harness.update(handle, RemoveEngineer(actor="erin", email=CAROL))
    await harness.settle(handle, Phase.DELIVERY)
    assert not (await harness.iam(CAROL)).exists
    assert (await harness.iam(ALICE)).exists


@pytest.fixture(scope="module")
def entra_server() -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.entra_scim_server", str(port)],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ScimServer.wait_for(port)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def test_entra_dialect_grant_and_revoke(
    env: WorkflowEnvironment, store: EngagementStore, entra_server: int, tmp_path: Path
) -> None:
    entra = ScimDirectory(f"http://127.0.0.1:{entra_server}/t{uuid.uuid4().hex[:10]}", dialect="entra")
    async with Harness.running(env.client, store, entra, tmp_path) as harness:
        spec = harness.spec(iam={"scim_base_url": entra.base_url, "dialect": "entra"})
        handle = await harness.start(spec)
        await harness.drive_to(handle, Phase.DELIVERY)
        assert (await harness.iam(BOB)).groups == {"repo-read", "staging-admin", "prod-admin"}
        await harness.update(handle, RemoveEngineer(actor="erin", email=BOB))
        await harness.settle(handle, Phase.DELIVERY)
        await nothing_left(harness, BOB)
        removals = [
            op
            for g in await harness.store.grants(handle.id)
            if g.engineer_email == BOB
            for op in g.revoke_evidence["operations"]
            if op["op"] == "remove_member"
        ]
        assert {op["outcome"] for op in removals} == {"removed"}
    await entra.close()


async def test_the_dialects_differ_on_the_wire_and_a_refused_form_falls_back(
    scim_server: ScimServer, entra_server: int
) -> None:
    """A strict RFC 7644 server refuses Entra's remove-with-value (400): the adapter removes by path
    filter instead and tries that first from then on; the Entra server takes the value form."""
    for base, accepted in ((scim_server.tenant_url("dialect"), False), (f"http://127.0.0.1:{entra_server}/d", True)):
        admin = ScimDirectory(base)
        entra = ScimDirectory(base, dialect="entra")
        await admin.create_group("g")
        user_id, _ = await admin.ensure_user(user_name="x@firm.example", display_name="X", email="x@firm.example")
        for _ in range(2):
            await admin.add_member("g", user_id)
            assert await entra.remove_member("g", user_id) == "removed"
            assert await admin.members("g") == set()
        assert entra.removal_forms[0] == ("value" if accepted else "path_filter")
        refused = entra.http.counts["PATCH Groups/{id}"] - 2
        assert refused == (0 if accepted else 1)  # the refused form was tried once, not on every removal
        await admin.close()
        await entra.close()


@pytest_asyncio.fixture
async def token_server() -> AsyncIterator[ScimServer]:
    server = ScimServer(extra_args=["--bearer-token", "globex-secret", "--tenant", "globex"])
    server.start()
    yield server
    server.stop()


async def test_two_clients_tenants_never_see_each_others_users(
    env: WorkflowEnvironment,
    store: EngagementStore,
    scim_server: ScimServer,
    token_server: ScimServer,
    tmp_path: Path,
) -> None:
    acme = ScimDirectory(scim_server.tenant_url(f"acme{uuid.uuid4().hex[:8]}"))
    globex = ScimDirectory(token_server.tenant_url("globex"), token="globex-secret")
    for group in ALL_GROUPS:
        await globex.create_group(group)
    async with Harness.running(env.client, store, acme, tmp_path, scim_tokens={"globex": "globex-secret"}) as harness:
        acme_handle = await harness.start(harness.spec())
        globex_spec = harness.spec(
            client={**harness.spec().client.model_dump(mode="json"), "name": "Globex"},
            iam={"scim_base_url": globex.base_url, "token_ref": "globex"},
            engineers=[e.model_dump(mode="json") for e in harness.spec().engineers if e.email != ALICE],
            roles={name: policy for name, policy in ROLES.items() if name != "developer"},
        )
        globex_handle = await harness.start(globex_spec)
        await asyncio.gather(
            harness.drive_to(acme_handle, Phase.DELIVERY), harness.drive_to(globex_handle, Phase.DELIVERY)
        )
        assert (await globex.find_user(ALICE)) is None  # Alice works for Acme only
        assert (await harness.iam(ALICE)).active
        # Bob works for both: two identities, one per tenant, each with its own grants.
        bob_acme = await acme.find_user(BOB)
        bob_globex = await globex.find_user(BOB)
        assert bob_acme is not None and bob_globex is not None and bob_acme.id != bob_globex.id
        await harness.update(globex_handle, RemoveEngineer(actor="globex", email=BOB))
        await harness.settle(globex_handle, Phase.DELIVERY)
        assert (await globex.read_identity(BOB, frozenset(ALL_GROUPS))).groups == frozenset()
        assert (await harness.iam(BOB)).groups == {"repo-read", "staging-admin", "prod-admin"}
    # Without the token, the client's IAM refuses: tokens come from the worker's settings only.
    anonymous = ScimDirectory(token_server.tenant_url("globex"))
    with pytest.raises(Exception, match="Authorization failure"):
        await anonymous.find_user(BOB)
    for directory in (acme, globex, anonymous):
        await directory.close()


async def test_apply_access_is_idempotent_and_adopts_an_existing_identity(
    store: EngagementStore, tenant: ScimDirectory
) -> None:
    for group in ALL_GROUPS:
        await tenant.create_group(group)
    existing, created = await tenant.ensure_user(user_name=CAROL, display_name="Carol", email=CAROL)
    assert created
    activities = EngagementActivities(store, DirectoryPool({}), AlertStore(store.engine))
    engagement_id = f"engagement-idem-{uuid.uuid4().hex[:8]}"
    await store.record_engagement(engagement_id, parse_spec(spec_data(tenant.base_url)), datetime.now(UTC))
    request = AccessRequest(
        engagement_id=engagement_id,
        iam=IamEndpoint(scim_base_url=tenant.base_url),
        email=CAROL,
        display_name="Carol Analyst",
        active=True,
        groups=["ticketing", "repo-read"],
        scope=ALL_GROUPS,
        actor="test",
        reason="onboarding",
        at=datetime.now(UTC),
    )
    environment = ActivityEnvironment()
    first = await environment.run(activities.apply_access, request)
    second = await environment.run(activities.apply_access, request)  # a retry
    assert first.scim_user_id == second.scim_user_id == existing  # adopted, not duplicated
    assert sorted(first.granted_groups) == ["repo-read", "ticketing"] and second.granted_groups == []
    for group in ("ticketing", "repo-read"):
        assert await tenant.members(group) == {existing}
    assert await tenant.member_count("ticketing") == 1  # one membership, however often it is applied
    await tenant.close()


async def test_a_group_recreated_in_the_iam_is_found_again(tenant: ScimDirectory) -> None:
    """Group ids are cached for the worker's life; the client's IAM owner may recreate a group."""
    user_id, _ = await tenant.ensure_user(user_name=CAROL, display_name="Carol", email=CAROL)
    old_id = await tenant.create_group("ticketing")
    await tenant.add_member("ticketing", user_id)
    owner = ScimDirectory(tenant.base_url)  # the IAM owner, with a client of their own
    await owner.delete_group("ticketing")
    new_id = await owner.create_group("ticketing")
    assert new_id != old_id

    await tenant.add_member("ticketing", user_id)  # the stale id 404s; the name is looked up again
    assert await owner.members("ticketing") == {user_id}

    await owner.delete_group("ticketing")  # recreated once more, and the member put back by hand
    await owner.create_group("ticketing")
    await owner.add_member("ticketing", user_id)
    # A removal through the stale id must not report "already absent" while the member is there.
    assert await tenant.remove_member("ticketing", user_id) == "removed"
    assert await owner.members("ticketing") == set()

    await owner.delete_group("ticketing")
    assert await tenant.remove_member("ticketing", user_id) == "already_absent"  # the group is gone
    await owner.close()
    await tenant.close()


async def test_a_refusal_that_retrying_cannot_fix_fails_at_once_typed_and_named(
    store: EngagementStore, token_server: ScimServer
) -> None:
    """A 4xx that the same request can never turn into a success is not retried silently forever:
    the activity fails as non-retryable, with a type and message the workflow can alert on."""
    activities = EngagementActivities(store, DirectoryPool({"globex": "a-revoked-token"}), AlertStore(store.engine))
    request = AccessRequest(
        engagement_id=f"engagement-refused-{uuid.uuid4().hex[:8]}",
        iam=IamEndpoint(scim_base_url=token_server.tenant_url("globex"), token_ref="globex"),
        email=CAROL,
        display_name="Carol Analyst",
        active=True,
        groups=["ticketing"],
        scope=ALL_GROUPS,
        expected_groups=[],
        actor="test",
        reason="onboarding",
        at=datetime.now(UTC),
    )
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.converge_access, request)
    assert refused.value.non_retryable and refused.value.type == "ScimRefused"
    assert "401" in refused.value.message and CAROL in refused.value.message
    # Runs started before the IAM lane cannot hear of a refusal: for them it stays retryable, as it was.
    with pytest.raises(ApplicationError) as retried:
        await ActivityEnvironment().run(activities.apply_access, request)
    assert not retried.value.non_retryable and retried.value.type == "ScimRefused"
