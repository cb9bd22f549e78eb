"""Observing group membership without reading whole groups, on servers that each allow other ways.

A group of thousands of members cannot be read on every convergence, and some servers (AWS IAM
Identity Center) never list members at all. Membership is therefore asked with a filter, or read
from the user's ``groups`` attribute, whichever the server supports. A way is only trusted to say
"not a member" once it has shown a membership on this server: a server that silently answers every
member filter with nothing would otherwise prove every revocation. What cannot be observed is
reported as unverified, never as proven.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from adapters.scim_http import ScimHttp, ScimRefused

Method = Literal["group_filter", "user_groups", "id_and_member_filter", "id_and_members_eq"]
MembershipSetting = Literal[
    "auto", "group_filter", "user_groups", "id_and_member_filter", "id_and_members_eq", "unobservable"
]
AUTO_ORDER: tuple[Method, ...] = ("group_filter", "user_groups", "id_and_member_filter", "id_and_members_eq")


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GroupDirectory(Protocol):
    http: ScimHttp

    async def groups_path(self) -> str: ...
    async def users_path(self) -> str: ...
    async def group_id(self, display_name: str) -> str: ...
    def group_name_of(self, group_id: str) -> str | None: ...


@dataclass(frozen=True)
class MembershipView:
    groups: frozenset[str]
    """The groups, among those asked about, that the server shows the identity in."""
    verified: bool
    """True when a way the server has proven trustworthy answered; False means "could not see"."""
    method: str
    problem: str | None = None


@dataclass
class MembershipCapability:
    """What this server has shown about each way of reading membership (kept for the worker's life)."""

    setting: MembershipSetting = "auto"
    confirmed: set[Method] = field(default_factory=set)
    """Ways that have shown a membership here: their "not a member" is believed."""
    broken: dict[Method, str] = field(default_factory=dict)
    """Ways the server refused, ignores, or that missed a membership another way saw: never used again."""
    negative_checked: set[Method] = field(default_factory=set)

    def candidates(self) -> list[Method]:
        if self.setting == "unobservable":
            return []
        order = AUTO_ORDER if self.setting == "auto" else (self.setting,)
        usable = [m for m in order if m not in self.broken]
        return sorted(usable, key=lambda m: m not in self.confirmed)  # trusted ways first, else in order

    def describe(self) -> str:
        return (
            f"membership setting {self.setting}; confirmed {sorted(self.confirmed) or '-'}; "
            f"unusable {self.broken or '-'}"
        )


async def _group_filter(directory: GroupDirectory, user_id: str, scope: frozenset[str]) -> set[str]:
    found = await directory.http.list_all(
        await directory.groups_path(),
        {"filter": f"members[value eq {quote(user_id)}]", "attributes": "displayName"},
    )
    names = {
        str(g.get("displayName")) if g.get("displayName") else directory.group_name_of(str(g.get("id"))) for g in found
    }
    return {n for n in names if n} & scope


async def _user_groups(directory: GroupDirectory, user_id: str, scope: frozenset[str]) -> set[str]:
    user = await directory.http.request(
        "GET", f"{await directory.users_path()}/{user_id}", params={"attributes": "groups"}
    )
    entries = (user or {}).get("groups") or []
    names = {directory.group_name_of(str(e.get("value"))) or e.get("display") for e in entries if isinstance(e, dict)}
    return {str(n) for n in names if n} & scope


def _per_group(template: str) -> Callable[[GroupDirectory, str, frozenset[str]], Awaitable[set[str]]]:
    async def read(directory: GroupDirectory, user_id: str, scope: frozenset[str]) -> set[str]:
        held = set()
        for name in sorted(scope):
            group_id = await directory.group_id(name)
            query = template.format(group=quote(group_id), user=quote(user_id))
            if await directory.http.count(await directory.groups_path(), {"filter": query, "attributes": "id"}):
                held.add(name)
        return held

    return read


READERS: dict[Method, Callable[[GroupDirectory, str, frozenset[str]], Awaitable[set[str]]]] = {
    "group_filter": _group_filter,
    "user_groups": _user_groups,
    "id_and_member_filter": _per_group("id eq {group} and members[value eq {user}]"),
    "id_and_members_eq": _per_group("id eq {group} and members eq {user}"),
}


async def _ignores_the_filter(directory: GroupDirectory, method: Method, scope: frozenset[str]) -> bool:
    """A member filter naming nobody must match nothing; a server that ignores it answers with groups."""
    if method == "user_groups" or not scope:
        return False
    return bool(await READERS[method](directory, f"nobody-{uuid.uuid4().hex}", scope))


async def read_memberships(
    directory: GroupDirectory, capability: MembershipCapability, user_id: str, scope: frozenset[str]
) -> MembershipView:
    """The identity's groups within scope, by the cheapest way this server has proven it answers truly."""
    if not scope:
        return MembershipView(frozenset(), True, "nothing to read")
    unconfirmed_answers: list[tuple[Method, set[str]]] = []
    for method in capability.candidates():
        try:
            if method not in capability.negative_checked:
                if await _ignores_the_filter(directory, method, scope):
                    capability.broken[method] = "matches a member that does not exist (the filter is ignored)"
                    continue
                capability.negative_checked.add(method)
            held = await READERS[method](directory, user_id, scope)
        except ScimRefused as error:
            capability.broken[method] = str(error)
            continue
        if held:
            capability.confirmed.add(method)
        for other, seen in unconfirmed_answers:
            if held - seen:  # a way that missed a membership this one sees cannot be believed here
                capability.broken[other] = f"did not show memberships that {method} shows"
        if method in capability.confirmed:
            return MembershipView(frozenset(held), True, method)
        unconfirmed_answers.append((method, held))
    seen_anywhere = frozenset(set().union(*(held for _, held in unconfirmed_answers)))
    return MembershipView(
        seen_anywhere,
        False,
        "none",
        problem=(
            "the IAM does not show group membership in a way that can be trusted yet "
            f"({capability.describe()}); what the engagement asked for cannot be proven"
        ),
    )
