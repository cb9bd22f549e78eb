"""The client's IAM over SCIM 2.0 (RFC 7643/7644), through scim2-client.

Idempotent by construction: creating a user that exists adopts it (409), removing what is already
gone counts as done (404), and every change is read back from the server before it is believed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx2
from scim2_client.engines.httpx2 import AsyncSCIMClient
from scim2_models import (
    Email,
    Group,
    NotFoundException,
    PatchOp,
    PatchOperation,
    SearchRequest,
    UniquenessException,
    User,
)

T = TypeVar("T")


class GroupNotFound(LookupError):
    """The policy names a group that the client's IAM does not have."""


@dataclass(frozen=True)
class IdentityReadBack:
    user_id: str | None
    exists: bool
    active: bool
    groups: frozenset[str]


def _id_of(resource: object) -> str:
    """The server-assigned id (scim2-models builds resource classes at discovery: no isinstance)."""
    identifier = getattr(resource, "id", None)
    if not identifier:
        raise ValueError(f"the SCIM server answered without a resource id: {resource!r}")
    return str(identifier)


def _resources(result: object) -> list[Any]:
    return list(getattr(result, "resources", None) or [])


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class ScimDirectory:
    """One client's SCIM service (one tenant), reached with that client's bearer token."""

    base_url: str
    token: str | None = None
    timeout_seconds: float = 10.0
    dialect: Literal["rfc7644", "entra"] = "rfc7644"
    """How a member is removed: RFC 7644 path filter, or Entra's remove-with-value."""
    _http: httpx2.AsyncClient | None = field(default=None, init=False, repr=False)
    _scim: AsyncSCIMClient | None = field(default=None, init=False, repr=False)
    _groups: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def _client(self) -> AsyncSCIMClient:
        async with self._lock:
            if self._scim is None:
                headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                self._http = httpx2.AsyncClient(
                    base_url=self.base_url.rstrip("/"), headers=headers, timeout=self.timeout_seconds
                )
                scim = AsyncSCIMClient(self._http)
                try:
                    await scim.discover()
                except BaseException:
                    await self._http.aclose()
                    self._http = None
                    raise
                self._scim = scim
            return self._scim

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None
        self._scim = None

    # ----------------------------------------------------------------- users

    async def find_user(self, user_name: str) -> Any | None:
        """The user resource with this userName (a class scim2-models builds at discovery), or None."""
        scim = await self._client()
        result = await scim.query(User, query_parameters=SearchRequest(filter=f"userName eq {_quote(user_name)}"))
        return next(iter(_resources(result)), None)

    async def ensure_user(self, *, user_name: str, display_name: str, email: str) -> tuple[str, bool]:
        """Create the identity, or adopt the one that already exists; returns its id and whether it was new."""
        scim = await self._client()
        try:
            created: Any = await scim.create(
                User(
                    user_name=user_name,
                    display_name=display_name,
                    active=True,
                    emails=[Email(value=email, primary=True, type="work")],
                )
            )
            return _id_of(created), True
        except UniquenessException:
            existing = await self.find_user(user_name)
            if existing is None:
                raise
            return _id_of(existing), False

    async def set_active(self, user_id: str, active: bool) -> None:
        scim = await self._client()
        patch = PatchOp[User[Any]](operations=[PatchOperation[User[Any]](op="replace", path="active", value=active)])
        await scim.modify(User, user_id, patch)

    async def delete_user(self, user_id: str) -> Literal["deleted", "already_absent"]:
        scim = await self._client()
        try:
            await scim.delete(User, user_id)
        except NotFoundException:
            return "already_absent"  # already gone: that is what we wanted
        return "deleted"

    # ----------------------------------------------------------------- groups

    async def group_id(self, display_name: str) -> str:
        if display_name in self._groups:
            return self._groups[display_name]
        scim = await self._client()
        result = await scim.query(
            Group, query_parameters=SearchRequest(filter=f"displayName eq {_quote(display_name)}")
        )
        group = next(iter(_resources(result)), None)
        if group is None:
            raise GroupNotFound(f"group {display_name!r} does not exist in the client's IAM at {self.base_url}")
        self._groups[display_name] = _id_of(group)
        return self._groups[display_name]

    async def create_group(self, display_name: str) -> str:
        """Create a group (the client's IAM owner does this; the engagement never does)."""
        scim = await self._client()
        group = await scim.create(Group(display_name=display_name))
        self._groups[display_name] = _id_of(group)
        return self._groups[display_name]

    async def _on_group(self, group_name: str, call: Callable[[str], Awaitable[T]]) -> T:
        """Call with the group's id. The ids are cached for the worker's life, so a 404 may only mean
        that the client's IAM owner recreated the group: look its name up again, once."""
        try:
            return await call(await self.group_id(group_name))
        except NotFoundException:
            self._groups.pop(group_name, None)
            return await call(await self.group_id(group_name))

    async def _group(self, group_name: str) -> Any:
        scim = await self._client()
        return await self._on_group(group_name, lambda group_id: scim.query(Group, group_id))

    async def members(self, group_name: str) -> set[str]:
        group = await self._group(group_name)
        return {m.value for m in getattr(group, "members", None) or [] if m.value}

    async def member_count(self, group_name: str) -> int:
        """How many member entries the group lists (a duplicate membership would count twice)."""
        return len(getattr(await self._group(group_name), "members", None) or [])

    async def add_member(self, group_name: str, user_id: str) -> None:
        scim = await self._client()
        patch = PatchOp[Group](operations=[PatchOperation[Group](op="add", path="members", value=[{"value": user_id}])])
        await self._on_group(group_name, lambda group_id: scim.modify(Group, group_id, patch))

    async def remove_member(self, group_name: str, user_id: str) -> Literal["removed", "already_absent"]:
        scim = await self._client()
        if self.dialect == "entra":
            # Entra ID sends (and expects) the member to remove as the operation's value, which
            # RFC 7644 does not allow: the payload is sent as is, unchecked by the client.
            entra_patch = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": "members", "value": [{"value": user_id}]}],
            }

            def remove(group_id: str) -> Awaitable[Any]:
                return scim.modify(Group, group_id, entra_patch, check_request_payload=False)
        else:
            patch = PatchOp[Group](
                operations=[PatchOperation[Group](op="remove", path=f"members[value eq {_quote(user_id)}]")]
            )

            def remove(group_id: str) -> Awaitable[Any]:
                return scim.modify(Group, group_id, patch)

        try:
            await self._on_group(group_name, remove)
        except (NotFoundException, GroupNotFound):
            return "already_absent"  # the membership, or the whole group, is already gone
        return "removed"

    # ----------------------------------------------------------------- read-back

    async def read_identity(self, user_name: str, groups_in_scope: frozenset[str]) -> IdentityReadBack:
        """What the IAM holds for this person, within the groups the engagement's policy manages."""
        user = await self.find_user(user_name)
        if user is None:
            return IdentityReadBack(user_id=None, exists=False, active=False, groups=frozenset())
        member_of = {name for name in sorted(groups_in_scope) if user.id in await self.members(name)}
        return IdentityReadBack(user_id=user.id, exists=True, active=bool(user.active), groups=frozenset(member_of))


class DirectoryPool:
    """One directory per (base URL, token), kept for the worker's life; tokens come from settings."""

    def __init__(self, tokens: dict[str, str], timeout_seconds: float = 10.0) -> None:
        self._tokens = tokens
        self._timeout = timeout_seconds
        self._directories: dict[tuple[str, str | None, str], ScimDirectory] = {}

    def directory(
        self, base_url: str, token_ref: str | None, dialect: Literal["rfc7644", "entra"] = "rfc7644"
    ) -> ScimDirectory:
        token = None
        if token_ref is not None:
            if token_ref not in self._tokens:
                raise KeyError(f"no SCIM token named {token_ref!r} in the worker's settings")
            token = self._tokens[token_ref]
        key = (base_url, token, dialect)
        if key not in self._directories:
            self._directories[key] = ScimDirectory(base_url, token, self._timeout, dialect)
        return self._directories[key]

    async def close(self) -> None:
        for directory in self._directories.values():
            await directory.close()
