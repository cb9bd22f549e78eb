"""Converge one identity in one IAM on a target (active or not, exactly these groups in scope).

Cheap on the normal path: the workflow's last read-back may stand in for the "before" read, so a
convergence that changes nothing costs one user lookup and one membership read, whatever the
group sizes. Every change is then read back; what the server cannot show is reported unverified.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from adapters.scim import ScimDirectory
from adapters.scim_http import REQUESTS_IN_THIS_TASK

MAX_PASSES = 2
"""A second pass catches drift the stale "before" did not show, and a removal the server accepted
without effect (it is then tried in the other form)."""


@dataclass(frozen=True)
class Target:
    user_name: str
    display_name: str
    email: str
    active: bool
    groups: frozenset[str]
    """Exactly the groups within ``scope`` the identity must hold."""
    scope: frozenset[str]
    deprovision: Literal["deactivate", "delete"] = "deactivate"
    expected_groups: frozenset[str] | None = None
    """What the last read-back showed (within scope); None: read it first."""
    expected_active: bool | None = None


@dataclass
class Convergence:
    user_id: str | None = None
    exists: bool = False
    active: bool = False
    groups: frozenset[str] = frozenset()
    """What the IAM showed at the end, within scope (unproven when ``verified`` is False)."""
    before: frozenset[str] = frozenset()
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    operations: list[dict[str, str]] = field(default_factory=list)
    verified: bool = True
    method: str = ""
    problem: str | None = None
    scim_requests: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    """The SCIM requests this convergence sent, by method and endpoint."""


async def converge(directory: ScimDirectory, target: Target) -> Convergence:
    counted: Counter[str] = Counter()
    token = REQUESTS_IN_THIS_TASK.set(counted)  # concurrent convergences share the directory
    try:
        result = await _converge(directory, target)
    finally:
        REQUESTS_IN_THIS_TASK.reset(token)
    result.scim_requests = sum(counted.values())
    result.requests = dict(counted)
    return result


async def _converge(directory: ScimDirectory, target: Target) -> Convergence:
    result = Convergence()
    user = await directory.find_user(target.user_name)
    if user is None and not target.active:
        return result  # nothing to take away: no identity, no membership (the lookup is the proof)
    if user is None:
        user_id, created = await directory.ensure_user(
            user_name=target.user_name, display_name=target.display_name, email=target.email
        )
        result.operations.append({"op": "create_user", "outcome": "created" if created else "adopted"})
        user_active, known_groups, created_now = True, frozenset[str]() if created else None, created
    else:
        user_id, user_active, created_now = user.id, user.active, False
        known_groups = target.expected_groups & target.scope if target.expected_groups is not None else None
    result.user_id, result.exists = user_id, True

    if not target.active and user_active:  # cut access at once; the groups follow
        await directory.set_active(user_id, False)
        result.operations.append({"op": "deactivate", "outcome": "done"})
    elif target.active and not user_active:
        await directory.set_active(user_id, True)
        result.operations.append({"op": "activate", "outcome": "done"})
    changed_active = any(op["op"] in ("activate", "deactivate") for op in result.operations)

    # The "before": the workflow's last read-back (or nothing, for an identity just created), unless
    # no way of reading membership is trusted here yet: reading memberships the identity holds is
    # what confirms one.
    if known_groups is None or not (created_now or directory.capability.confirmed):
        before = await directory.memberships(user_id, target.scope)
        known_groups = before.groups if before.verified else (known_groups or frozenset()) | before.groups
    result.before = current = known_groups
    for _ in range(MAX_PASSES):
        removing = sorted((current & target.scope) - target.groups)
        await _change(directory, user_id, sorted(target.groups - current), removing, current, result)
        after = await directory.memberships(user_id, target.scope)
        result.groups, result.verified, result.method, result.problem = (
            after.groups,
            after.verified,
            after.method,
            after.problem,
        )
        if not after.verified:
            # Nothing can be seen: every membership in scope that is not wanted is removed, blindly
            # (removing what is not there is harmless), and the result is what the IAM accepted.
            blind = sorted(target.scope - target.groups - set(removing))
            await _change(directory, user_id, [], blind, current, result)
            result.groups = target.groups
            break
        if after.groups == target.groups:
            break
        if set(removing) & after.groups:  # accepted without effect: this server wants the other form
            directory.prefer_removal(other_than=directory.removal_forms[0])
        current = after.groups

    result.active = user_active
    if changed_active or (target.deprovision == "delete" and not target.active):
        if not target.active and target.deprovision == "delete":
            deleted = await directory.delete_user(user_id)
            result.operations.append({"op": "delete_user", "outcome": deleted})
        seen = await directory.find_user(target.user_name)  # the cheap check of what changed
        result.exists = seen is not None
        result.active = seen.active if seen is not None else False
        if seen is None:
            result.groups, result.verified = frozenset(), True  # a deleted identity holds nothing
    return result


async def _change(
    directory: ScimDirectory,
    user_id: str,
    adding: list[str],
    removing: list[str],
    held: frozenset[str],
    result: Convergence,
) -> None:
    """Take away before granting: a grant that cannot be made (its group missing in the IAM, a refusal)
    must never hold back the removal of what the identity is no longer to hold (a role change)."""
    for group in removing:
        outcome = await directory.remove_member(group, user_id)
        result.operations.append({"op": "remove_member", "group": group, "outcome": outcome})
        if outcome == "removed" and group in held:
            result.removed.append(group)
    for group in adding:
        await directory.add_member(group, user_id)
        result.operations.append({"op": "add_member", "group": group, "outcome": "done"})
        result.added.append(group)
