"""The client's IAM over SCIM 2.0 (RFC 7643/7644).

Idempotent by construction, and tolerant of the ways real servers differ: a user is looked up
before it is created and adopted on any 409; userName is matched exactly but without regard to
case (RFC 7643 makes it case-insensitive); a member is removed by path filter or by value,
whichever the server takes (remembered per client); group ids are resolved without reading
members; membership is observed through filters or the user's ``groups`` (``scim_membership``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from scim2_models import Context, Email, User

from adapters.scim_http import (
    Endpoints,
    ScimConflict,
    ScimError,
    ScimHttp,
    ScimNotFound,
    ScimRefused,
)
from adapters.scim_membership import (
    MembershipCapability,
    MembershipSetting,
    MembershipView,
    quote,
    read_memberships,
)

T = TypeVar("T")
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
RemovalForm = Literal["path_filter", "value"]
Dialect = Literal["rfc7644", "entra"]


class GroupNotFound(LookupError):
    """The policy names a group that the client's IAM does not have."""


class UserNameConflict(ScimRefused):
    """The server says the userName is taken (409) but no lookup finds that identity."""


@dataclass(frozen=True)
class ScimUser:
    id: str
    user_name: str
    active: bool


@dataclass(frozen=True)
class IdentityReadBack:
    user_id: str | None
    exists: bool
    active: bool
    groups: frozenset[str]
    verified: bool = True
    """False when the server could not show membership: ``groups`` is then what it was told, unproven."""
    method: str = ""
    problem: str | None = None


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def _id_of(resource: object) -> str:
    identifier = resource.get("id") if isinstance(resource, dict) else None
    if not identifier:
        raise ScimRefused(f"the SCIM server answered without a resource id: {str(resource)[:200]}")
    return str(identifier)


@dataclass
class ScimDirectory:
    """One client's SCIM service (one tenant), reached with that client's bearer token."""

    base_url: str
    token: str | None = None
    timeout_seconds: float = 10.0
    dialect: Dialect = "rfc7644"
    """The member-removal form tried first: RFC 7644 path filter, or Entra's remove-with-value."""
    allow_core_fallback: bool = True
    """Whether missing or malformed discovery falls back to RFC 7643's core User and Group."""
    membership: MembershipSetting = "auto"
    http: ScimHttp = field(init=False, repr=False)
    capability: MembershipCapability = field(init=False, repr=False)
    removal_forms: list[RemovalForm] = field(init=False, repr=False)
    """The removal forms in the order they are tried; a form the server refuses moves to the back."""
    activation_by_value: bool = field(default=False, init=False, repr=False)
    _endpoints: Endpoints | None = field(default=None, init=False, repr=False)
    _groups: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.http = ScimHttp(self.base_url, self.token, self.timeout_seconds)
        self.capability = MembershipCapability(self.membership)
        self.removal_forms = ["value", "path_filter"] if self.dialect == "entra" else ["path_filter", "value"]

    @property
    def request_count(self) -> int:
        return sum(self.http.counts.values())

    async def endpoints(self) -> Endpoints:
        async with self._lock:
            if self._endpoints is None:
                self._endpoints = await self.http.discover(self.allow_core_fallback)
            return self._endpoints

    async def users_path(self) -> str:
        return (await self.endpoints()).users

    async def groups_path(self) -> str:
        return (await self.endpoints()).groups

    async def close(self) -> None:
        await self.http.close()

    # ----------------------------------------------------------------- users

    async def find_user(self, user_name: str, *, by_listing: bool = False) -> ScimUser | None:
        """The identity whose userName is this one, ignoring case; never a non-matching result.

        ``by_listing`` reads every userName instead of filtering: the last resort after a 409 on a
        server whose filter compares case-sensitively (RFC 7643 says it must not)."""
        query = {"attributes": "userName,active"} if by_listing else {"filter": f"userName eq {quote(user_name)}"}
        found = await self.http.list_all(await self.users_path(), query)
        matching = [u for u in found if str(u.get("userName", "")).casefold() == user_name.casefold()]
        matching.sort(key=lambda u: u.get("userName") != user_name)  # the exact spelling first, if two
        if not matching:
            return None
        user = matching[0]
        return ScimUser(_id_of(user), str(user["userName"]), user.get("active", True) is not False)

    async def ensure_user(self, *, user_name: str, display_name: str, email: str) -> tuple[str, bool]:
        """The identity's id, created only when no identity has this userName; whether it was created."""
        existing = await self.find_user(user_name)
        if existing is not None:
            return existing.id, False
        payload = User(
            user_name=user_name,
            display_name=display_name,
            active=True,
            emails=[Email(value=email, primary=True, type="work")],
        ).model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        try:
            created = await self.http.request("POST", await self.users_path(), json=payload)
        except ScimConflict as conflict:  # any 409, with or without scimType: someone created it meanwhile
            existing = await self.find_user(user_name) or await self.find_user(user_name, by_listing=True)
            if existing is None:
                raise UserNameConflict(
                    f"the IAM at {self.base_url} refuses to create {user_name} ({conflict}) "
                    "but no identity with that userName can be found",
                    status=409,
                ) from None
            return existing.id, False
        return _id_of(created), True

    async def set_active(self, user_id: str, active: bool) -> None:
        path = f"{await self.users_path()}/{user_id}"
        if not self.activation_by_value:
            try:
                await self.http.request(
                    "PATCH", path, json=_patch({"op": "replace", "path": "active", "value": active})
                )
                return
            except ScimRefused as error:
                if error.status not in (400, 501):
                    raise
                self.activation_by_value = True  # the form without a path (as some IdPs send it)
        await self.http.request("PATCH", path, json=_patch({"op": "replace", "value": {"active": active}}))

    async def delete_user(self, user_id: str) -> Literal["deleted", "already_absent"]:
        try:
            await self.http.request("DELETE", f"{await self.users_path()}/{user_id}")
        except ScimNotFound:
            return "already_absent"  # already gone: that is what we wanted
        return "deleted"

    # ----------------------------------------------------------------- groups

    def group_name_of(self, group_id: str) -> str | None:
        return next((name for name, known in self._groups.items() if known == group_id), None)

    async def group_id(self, display_name: str) -> str:
        """The group's id, by a filter that returns no members, else by listing names (cached)."""
        if display_name in self._groups:
            return self._groups[display_name]
        groups = await self.groups_path()
        names = {"attributes": "id,displayName"}  # never the members
        found = await self.http.list_all(groups, {"filter": f"displayName eq {quote(display_name)}", **names})
        match = next((g for g in found if g.get("displayName") == display_name), None)
        if match is None:  # a server that cannot filter groups answers with nothing: list the names
            for group in await self.http.list_all(groups, names):
                if group.get("displayName"):
                    self._groups.setdefault(str(group["displayName"]), _id_of(group))
            if display_name not in self._groups:
                raise GroupNotFound(f"group {display_name!r} does not exist in the client's IAM at {self.base_url}")
            return self._groups[display_name]
        self._groups[display_name] = _id_of(match)
        return self._groups[display_name]

    async def create_group(self, display_name: str) -> str:
        """Create a group (the client's IAM owner does this; the engagement never does)."""
        body = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
        created = await self.http.request("POST", await self.groups_path(), json=body)
        self._groups[display_name] = _id_of(created)
        return self._groups[display_name]

    async def delete_group(self, display_name: str) -> None:
        """Delete a group (the client's IAM owner does this; tests play that part)."""
        await self.http.request("DELETE", f"{await self.groups_path()}/{await self.group_id(display_name)}")
        self._groups.pop(display_name, None)

    async def _on_group(self, group_name: str, call: Callable[[str], Awaitable[T]]) -> T:
        """Call with the group's id. The ids are cached for the worker's life, so a 404 may only mean
        that the client's IAM owner recreated the group: look its name up again, once."""
        try:
            return await call(await self.group_id(group_name))
        except ScimNotFound:
            self._groups.pop(group_name, None)
            return await call(await self.group_id(group_name))

    async def add_member(self, group_name: str, user_id: str) -> None:
        patch = _patch({"op": "add", "path": "members", "value": [{"value": user_id}]})
        path = await self.groups_path()
        try:
            await self._on_group(group_name, lambda gid: self.http.request("PATCH", f"{path}/{gid}", json=patch))
        except ScimConflict:
            pass  # some servers answer 409 to a member that is already there; the read-back decides

    async def remove_member(self, group_name: str, user_id: str) -> Literal["removed", "already_absent"]:
        """Remove by the form this server takes; a form it refuses (400/501) is not tried first again."""
        path = await self.groups_path()
        forms: dict[RemovalForm, dict[str, Any]] = {
            "path_filter": _patch({"op": "remove", "path": f"members[value eq {quote(user_id)}]"}),
            "value": _patch({"op": "remove", "path": "members", "value": [{"value": user_id}]}),
        }
        refusals: list[str] = []

        def send(body: dict[str, Any]) -> Callable[[str], Awaitable[Any]]:
            return lambda group_id: self.http.request("PATCH", f"{path}/{group_id}", json=body)

        for form in list(self.removal_forms):
            try:
                await self._on_group(group_name, send(forms[form]))
            except (ScimNotFound, GroupNotFound):
                return "already_absent"  # the membership, or the whole group, is already gone
            except ScimRefused as error:
                if error.status not in (400, 501):
                    raise
                refusals.append(f"{form}: {error}")
                self.prefer_removal(other_than=form)
                continue
            return "removed"
        raise ScimRefused(
            f"the IAM at {self.base_url} refuses every member-removal form: " + "; ".join(refusals), status=400
        )

    def prefer_removal(self, *, other_than: RemovalForm) -> None:
        """Try the other removal form first from now on (refused, or accepted without effect)."""
        self.removal_forms.sort(key=lambda form: form == other_than)

    # ----------------------------------------------------------------- read-back

    async def memberships(self, user_id: str, scope: frozenset[str]) -> MembershipView:
        return await read_memberships(self, self.capability, user_id, scope)

    async def read_identity(self, user_name: str, groups_in_scope: frozenset[str]) -> IdentityReadBack:
        """What the IAM holds for this person, within the groups the engagement's policy manages."""
        user = await self.find_user(user_name)
        if user is None:
            return IdentityReadBack(user_id=None, exists=False, active=False, groups=frozenset())
        seen = await self.memberships(user.id, groups_in_scope)
        return IdentityReadBack(user.id, True, user.active, seen.groups, seen.verified, seen.method, seen.problem)

    # ----------------------------------------------------------------- the IAM owner's views (tests, demo)

    async def members(self, group_name: str) -> set[str]:
        """Every member id, from the whole group: the IAM owner's view, never used to converge."""
        return {str(m["value"]) for m in await self._member_entries(group_name) if m.get("value")}

    async def member_count(self, group_name: str) -> int:
        """How many member entries the group lists (a duplicate membership would count twice)."""
        return len(await self._member_entries(group_name))

    async def _member_entries(self, group_name: str) -> list[dict[str, Any]]:
        path = await self.groups_path()
        group = await self._on_group(group_name, lambda gid: self.http.request("GET", f"{path}/{gid}"))
        return [m for m in (group or {}).get("members") or [] if isinstance(m, dict)]


DirectoryKey = tuple[str, str | None, Dialect, bool, MembershipSetting]


class DirectoryPool:
    """The clients' directories, tokens from settings. At most ``max_clients`` stay open: the least
    recently used one beyond that is closed (a directory a caller still holds through `lease` when
    that caller lets go), so a worker serving many clients keeps its memory bounded. A client whose
    directory was closed gets a new one next time: it discovers the server again and looks its groups
    up again (a few more SCIM requests, once)."""

    def __init__(self, tokens: dict[str, str], timeout_seconds: float = 10.0, max_clients: int = 256) -> None:
        if max_clients < 1:
            raise ValueError("a directory pool holds at least one client")
        self._tokens = tokens
        self._timeout = timeout_seconds
        self.max_clients = max_clients
        self._directories: OrderedDict[DirectoryKey, ScimDirectory] = OrderedDict()
        self._leases: Counter[int] = Counter()
        """Callers holding each directory (by id: a dataclass directory is not hashable)."""
        self._evicted_in_use: dict[int, ScimDirectory] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """How many directories are open: the ones in the pool and the evicted ones still leased."""
        return len(self._directories) + len(self._evicted_in_use)

    def directory(
        self,
        base_url: str,
        token_ref: str | None,
        dialect: Dialect = "rfc7644",
        *,
        allow_core_fallback: bool = True,
        membership: MembershipSetting = "auto",
    ) -> ScimDirectory:
        """This client's directory, opened if it is not in the pool; it is now the most recently used."""
        token = None
        if token_ref is not None:
            if token_ref not in self._tokens:
                raise KeyError(f"no SCIM token named {token_ref!r} in the worker's settings")
            token = self._tokens[token_ref]
        key = (base_url, token, dialect, allow_core_fallback, membership)
        if key in self._directories:
            self._directories.move_to_end(key)
            return self._directories[key]
        directory = ScimDirectory(
            base_url, token, self._timeout, dialect, allow_core_fallback=allow_core_fallback, membership=membership
        )
        self._directories[key] = directory
        while len(self._directories) > self.max_clients:
            _, evicted = self._directories.popitem(last=False)
            if self._leases[id(evicted)]:
                self._evicted_in_use[id(evicted)] = evicted
            else:
                self._close_soon(evicted)
        return directory

    @contextlib.asynccontextmanager
    async def lease(self, directory: ScimDirectory) -> AsyncIterator[ScimDirectory]:
        """Hold a directory of this pool (from `directory`) for the block: it is never closed under the
        caller, even if it is evicted meanwhile."""
        self._leases[id(directory)] += 1
        try:
            yield directory
        finally:
            self._leases[id(directory)] -= 1
            if not self._leases[id(directory)]:
                del self._leases[id(directory)]
                if self._evicted_in_use.pop(id(directory), None) is not None:
                    await directory.close()

    def _close_soon(self, directory: ScimDirectory) -> None:
        task = asyncio.get_running_loop().create_task(directory.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for directory in [*self._directories.values(), *self._evicted_in_use.values()]:
            await directory.close()
        self._directories.clear()
        self._evicted_in_use.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)


__all__ = ["DirectoryPool", "GroupNotFound", "IdentityReadBack", "ScimDirectory", "ScimError", "ScimUser"]
