"""Converge one identity in one IAM on a target (active or not, exactly these groups in scope).

Cheap on the normal path: the workflow's last read-back may stand in for the "before" read, so a
convergence that changes nothing costs one user lookup and one membership read, whatever the
group sizes. Every change is then read back; what the server cannot show is reported unverified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adapters.scim import ScimDirectory

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


async def converge(directory: ScimDirectory, target: Target) -> Convergence:
    start = directory.request_count
    result = await _converge(directory, target)
    result.scim_requests = directory.request_count - start
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
        user_active, known_groups = True, frozenset[str]() if created else None
    else:
        user_id, user_active = user.id, user.active
        known_groups = target.expected_groups & target.scope if target.expected_groups is not None else None
    result.user_id, result.exists = user_id, True

    if not target.active and user_active:  # cut access at once; the groups follow
        await directory.set_active(user_id, False)
        result.operations.append({"op": "deactivate", "outcome": "done"})
    elif target.active and not user_active:
        await directory.set_active(user_id, True)
        result.operations.append({"op": "activate", "outcome": "done"})
    changed_active = any(op["op"] in ("activate", "deactivate") for op in result.operations)

    # The "before": the workflow's last read-back, unless no membership read is trusted here yet (a
    # read of the memberships the identity still holds is what confirms a way of reading them).
    holds_maybe = known_groups  # what might be held: every membership not wanted is removed from it
    if known_groups is None or not directory.capability.confirmed:
        before = await directory.memberships(user_id, target.scope)
        if before.verified:
            known_groups = holds_maybe = before.groups
        else:  # nothing can be seen: add what was not granted yet, remove whatever is not wanted
            known_groups = (known_groups or frozenset()) | before.groups
            holds_maybe = target.scope
    assert known_groups is not None and holds_maybe is not None
    result.before = known_groups
    current = known_groups
    for _ in range(MAX_PASSES):
        removing = sorted((holds_maybe & target.scope) - target.groups)
        for group in sorted(target.groups - current):
            await directory.add_member(group, user_id)
            result.operations.append({"op": "add_member", "group": group, "outcome": "done"})
            result.added.append(group)
        for group in removing:
            outcome = await directory.remove_member(group, user_id)
            result.operations.append({"op": "remove_member", "group": group, "outcome": outcome})
            if outcome == "removed" and group in current:
                result.removed.append(group)
        after = await directory.memberships(user_id, target.scope)
        result.groups, result.verified, result.method, result.problem = (
            after.groups,
            after.verified,
            after.method,
            after.problem,
        )
        if not after.verified:
            result.groups = target.groups  # what the IAM accepted, unproven
            break
        if after.groups == target.groups:
            break
        if set(removing) & after.groups:  # accepted without effect: this server wants the other form
            directory.prefer_removal(other_than=directory.removal_forms[0])
        current = holds_maybe = after.groups

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
