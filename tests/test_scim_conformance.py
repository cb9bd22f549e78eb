"""The SCIM adapter against independent SCIM server implementations (``tests/scim_peers``):
scim2-server, django-scim2, SCIMMY, and scim2-server hiding group members as AWS does (``aws-like``)
or hiding membership and discovery altogether (``opaque``).

Each server is asked the same things; where servers differ, the test states what that server does
and what the adapter makes of it. The truth is read from the server itself (behind the proxy, for
the two hiding ones), never from the adapter's own belief."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore
from adapters.iam_convergence import Target, converge
from adapters.scim import GroupNotFound, ScimDirectory
from adapters.scim_http import ScimConflict, ScimDiscoveryError
from domain.vocabulary import Phase
from tests.conftest import PeerFarm
from tests.helpers import Harness
from tests.scim_peers.servers import Peer

ALICE, BOB, CAROL = "alice@firm.example", "bob@firm.example", "carol@firm.example"
MEMBERSHIP_METHOD = {
    "scim2-server": "group_filter",
    "django-scim2": "user_groups",  # its member filters answer nothing at all, whatever the members
    "scimmy": "user_groups",  # its member filter fails on a group without members (400)
    "aws-like": "id_and_members_eq",  # the one member filter AWS IAM Identity Center accepts
    "opaque": "none",
}
FIRST_REMOVAL_FORM_AFTER_USE = {
    "scim2-server": "path_filter",
    "django-scim2": "value",  # it answers 501 to a path filter
    "scimmy": "path_filter",
    "aws-like": "path_filter",
    "opaque": "path_filter",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Setup:
    def __init__(self, peer: Peer) -> None:
        url = peer.url()
        self.peer = peer
        self.iam = ScimDirectory(url)
        """What the engagement's worker uses."""
        self.owner = ScimDirectory(peer.truth_url(url))
        """The client's IAM owner, reading the server behind any proxy: the truth."""
        self.groups = [unique("g") for _ in range(3)]

    async def start(self) -> None:
        for group in self.groups:
            await self.owner.create_group(group)

    def target(self, user: str, groups: set[str], *, active: bool = True, **kwargs: object) -> Target:
        return Target(
            user_name=user,
            display_name="Test Person",
            email=user.lower(),
            active=active,
            groups=frozenset(groups),
            scope=frozenset(self.groups),
            **kwargs,  # type: ignore[arg-type]
        )

    async def truth(self, user: str) -> tuple[bool, set[str]]:
        found = await self.owner.find_user(user)
        assert found is not None
        return found.active, {g for g in self.groups if found.id in await self.owner.members(g)}

    async def close(self) -> None:
        await self.iam.close()
        await self.owner.close()


@pytest_asyncio.fixture
async def setup(scim_peer: Peer) -> AsyncIterator[Setup]:
    prepared = Setup(scim_peer)
    await prepared.start()
    yield prepared
    await prepared.close()


async def test_a_user_is_created_once_and_adopted_whatever_the_case_of_its_user_name(setup: Setup) -> None:
    user = unique("Dana") + "@Firm.example"
    user_id, created = await setup.iam.ensure_user(user_name=user, display_name="Dana", email=user.lower())
    assert created
    again, created_again = await setup.iam.ensure_user(user_name=user, display_name="Dana", email=user.lower())
    assert (again, created_again) == (user_id, False)
    assert setup.iam.http.counts["POST Users"] == 1  # looked up first: no POST for a user that exists
    # The same person in other letters is the same identity (userName is case-insensitive): adopted.
    lower, created_lower = await setup.iam.ensure_user(user_name=user.lower(), display_name="D", email=user.lower())
    assert (lower, created_lower) == (user_id, False)
    # A name that merely starts like it is somebody else.
    assert await setup.iam.find_user(user + ".other") is None


async def test_grant_then_revoke_is_proven_or_reported_unverified_never_assumed(setup: Setup) -> None:
    user = unique("erin") + "@firm.example"
    granted = await converge(setup.iam, setup.target(user, {setup.groups[0], setup.groups[1]}))
    assert await setup.truth(user) == (True, {setup.groups[0], setup.groups[1]})
    expected_method = MEMBERSHIP_METHOD[setup.peer.name]
    assert granted.verified is (expected_method != "none")
    assert granted.method == expected_method
    assert granted.groups == {setup.groups[0], setup.groups[1]}

    revoked = await converge(
        setup.iam,
        setup.target(user, set(), active=False, expected_groups=granted.groups, expected_active=True),
    )
    assert await setup.truth(user) == (False, set())
    assert revoked.verified is (expected_method != "none")
    assert not revoked.active and revoked.groups == frozenset()
    if not revoked.verified:
        assert revoked.problem and "cannot be proven" in revoked.problem
    assert setup.iam.removal_forms[0] == FIRST_REMOVAL_FORM_AFTER_USE[setup.peer.name]


async def test_drift_is_seen_through_the_stale_before_and_corrected(setup: Setup) -> None:
    user = unique("fay") + "@firm.example"
    first = await converge(setup.iam, setup.target(user, {setup.groups[0]}))
    assert first.user_id is not None
    await setup.owner.add_member(setup.groups[2], first.user_id)  # added by hand at the client
    again = await converge(
        setup.iam, setup.target(user, {setup.groups[0]}, expected_groups=frozenset({setup.groups[0]}))
    )
    assert await setup.truth(user) == (True, {setup.groups[0]})
    if setup.peer.name == "opaque":
        # Nothing can be seen, so every membership not wanted is removed blindly, and nothing is proven.
        assert not again.verified
        assert {op["group"] for op in again.operations if op["op"] == "remove_member"} == set(setup.groups[1:])
    else:
        assert again.verified and again.removed == [setup.groups[2]]


async def test_a_grant_that_cannot_be_made_never_holds_back_a_removal(setup: Setup) -> None:
    """A role change whose new group the client has not created yet: the old group is taken away at
    once, and the convergence fails on the missing group (to be retried once it exists)."""
    user = unique("gus") + "@firm.example"
    await converge(setup.iam, setup.target(user, {setup.groups[0]}))
    missing = unique("not-created")
    moved = replace(
        setup.target(user, {missing}, expected_groups=frozenset({setup.groups[0]}), expected_active=True),
        scope=frozenset({*setup.groups, missing}),
    )
    with pytest.raises(GroupNotFound):
        await converge(setup.iam, moved)
    assert await setup.truth(user) == (True, set())  # the old role's group is gone already

    await setup.owner.create_group(missing)  # the IAM owner creates it: the retry grants it
    retried = await converge(setup.iam, moved)
    assert retried.groups == {missing} or not retried.verified
    assert setup.peer.name == "opaque" or retried.verified
    found = await setup.owner.find_user(user)
    assert found is not None and found.id in await setup.owner.members(missing)


async def test_a_convergence_that_changes_nothing_costs_at_most_four_requests(setup: Setup) -> None:
    user = unique("gus") + "@firm.example"
    first = await converge(setup.iam, setup.target(user, {setup.groups[1]}))
    quiet = await converge(
        setup.iam,
        setup.target(user, {setup.groups[1]}, expected_groups=first.groups, expected_active=True),
    )
    if setup.peer.name == "opaque":  # it cannot know that nothing changed: it removes blindly
        assert not quiet.verified and {op["op"] for op in quiet.operations} == {"remove_member"}
        return
    assert quiet.operations == []
    assert quiet.scim_requests <= 4, setup.iam.http.counts


async def test_discovery_is_used_when_the_server_offers_it_else_the_core_schemas(scim_peer: Peer) -> None:
    lenient = ScimDirectory(scim_peer.url())
    strict = ScimDirectory(scim_peer.url(), allow_core_fallback=False)
    try:
        endpoints = await lenient.endpoints()
        if scim_peer.name == "opaque":  # /ResourceTypes answers 404
            assert endpoints.source == "core_fallback" and endpoints.problem
            assert (endpoints.users, endpoints.groups) == ("/Users", "/Groups")
            with pytest.raises(ScimDiscoveryError, match="does not allow the core-schema fallback"):
                await strict.endpoints()
        else:  # django-scim2's ListResponse has no totalResults: read leniently, not refused
            assert endpoints.source == "discovered", endpoints.problem
            assert (await strict.endpoints()).source == "discovered"
        assert await lenient.find_user(unique("nobody") + "@firm.example") is None
    finally:
        await lenient.close()
        await strict.close()


async def test_a_member_filter_that_answers_nothing_is_never_believed(scim_peer: Peer) -> None:
    """A worker that starts afresh and must revoke first: the member is there, and must be found."""
    owner = ScimDirectory(scim_peer.truth_url(url := scim_peer.url()))
    group = unique("g")
    await owner.create_group(group)
    user = unique("hal") + "@firm.example"
    user_id, _ = await owner.ensure_user(user_name=user, display_name="Hal", email=user)
    await owner.add_member(group, user_id)
    fresh = ScimDirectory(url)
    try:
        seen = await fresh.read_identity(user, frozenset({group}))
        if scim_peer.name == "opaque":
            assert not seen.verified and seen.groups == frozenset()
        else:
            assert seen.verified and seen.groups == {group}
            assert seen.method == MEMBERSHIP_METHOD[scim_peer.name]
        if scim_peer.name == "django-scim2":
            assert "group_filter" in fresh.capability.broken  # it showed nothing where a member is
    finally:
        await owner.close()
        await fresh.close()


async def test_membership_in_a_group_of_ten_thousand_costs_no_full_group_read(peer_farm: PeerFarm) -> None:
    """On one peer (SCIMMY takes members that are not users, in one request): the point is what the
    adapter sends, whatever the group size."""
    url = peer_farm.get("scimmy").url()
    owner = ScimDirectory(url)
    iam = ScimDirectory(url)
    big, small = unique("everyone"), unique("ops")
    user = unique("ivy") + "@firm.example"
    try:
        user_id, _ = await owner.ensure_user(user_name=user, display_name="Ivy", email=user)
        members = [*({"value": uuid.uuid4().hex} for _ in range(9_999)), {"value": user_id}]
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": big, "members": members}
        await owner.http.request("POST", "/Groups", json=body)
        await owner.create_group(small)

        scope = frozenset({big, small})
        target = Target(user, "Ivy", user, True, frozenset({big}), scope, expected_groups=frozenset({big}))
        first = await converge(iam, target)
        assert first.verified and first.groups == {big} and first.operations == []
        iam.http.counts.clear()
        quiet = await converge(iam, target)
        assert quiet.operations == [] and quiet.scim_requests <= 4
        assert quiet.scim_requests == sum(iam.http.counts.values())
        revoked = await converge(
            iam, Target(user, "Ivy", user, False, frozenset(), scope, expected_groups=first.groups)
        )
        assert revoked.verified and revoked.groups == frozenset() and revoked.scim_requests <= 6
        assert iam.http.counts["GET Groups/{id}"] == 0, iam.http.counts  # never a whole group
        assert (await owner.read_identity(user, scope)).groups == frozenset()
    finally:
        await owner.close()
        await iam.close()


async def test_a_whole_engagement_on_each_server(
    env: WorkflowEnvironment, store: EngagementStore, fresh_scim_peer: Peer, tmp_path: Path
) -> None:
    """Start, NDA, checks, notice, end date, transition, closed: the IAM really holds nothing at the end."""
    url = fresh_scim_peer.url()
    owner = ScimDirectory(fresh_scim_peer.truth_url(url))  # the truth, behind any proxy
    async with Harness.running(env.client, store, owner, tmp_path) as harness:
        handle = await harness.start(harness.spec(iam={"scim_base_url": url}))
        await harness.drive_to(handle, Phase.NOTICE)
        assert (await harness.iam(ALICE)).groups == {"repo-write", "staging-deploy", "prod-readonly"}
        assert (await harness.iam(BOB)).groups == {"repo-read", "staging-admin", "prod-admin"}
        assert (await harness.iam(CAROL)).groups == {"ticketing"}

        await env.sleep(timedelta(days=60, minutes=1))  # the end date
        view = await harness.settle(handle, Phase.TRANSITION)
        assert view.revocation is not None
        for person in (ALICE, BOB, CAROL):
            identity = await harness.iam(person)
            assert identity.exists and not identity.active and identity.groups == set(), (person, identity)
        proven = {r.membership_verified for r in view.revocation.engineers}
        assert proven == {fresh_scim_peer.name != "opaque"}  # never called proven where it cannot be
        alerts = {a.kind for a in await harness.alerts(handle)}
        assert ("iam_unverified" in alerts) is (fresh_scim_peer.name == "opaque")

        await env.sleep(timedelta(days=31))
        summary = await handle.result()
        assert summary.phase is Phase.CLOSED
        assert (summary.remaining_grants, summary.active_identities) == (0, 0)
    await owner.close()


async def test_a_duplicate_is_a_conflict_with_or_without_scim_type(scim_peer: Peer) -> None:
    """409 is what a duplicate gets; django-scim2 sends it without ``scimType``: both are adopted."""
    iam = ScimDirectory(scim_peer.url())
    user = unique("jo") + "@firm.example"
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user}
    try:
        await iam.http.request("POST", await iam.users_path(), json=body)
        with pytest.raises(ScimConflict) as conflict:
            await iam.http.request("POST", await iam.users_path(), json=body)
        assert conflict.value.status == 409
        assert (conflict.value.scim_type is None) is (scim_peer.name == "django-scim2")
    finally:
        await iam.close()
