"""SCIM 2.0 on the wire (RFC 7644): requests, typed errors, lenient list responses, discovery.

Servers differ in small ways that must not stop an engagement: a ``ListResponse`` without
``totalResults``, a 409 without ``scimType``, discovery endpoints that are missing or malformed.
This module reads what servers actually send, and classifies every failure once: a 404 or 409 the
caller handles, a transient failure that retrying fixes, or a refusal that retrying never fixes.
"""

from __future__ import annotations

import functools
import ssl
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
from scim2_models import Group, ResourceType, User

SCIM_JSON = "application/scim+json"
LIST_PAGE_SIZE = 100
MAX_LIST_PAGES = 1000
"""A safety bound on pagination (100,000 results) against a server whose paging never ends."""


REQUESTS_IN_THIS_TASK: ContextVar[Counter[str] | None] = ContextVar("scim_requests_in_this_task", default=None)
"""Set by a caller that wants the requests sent on its behalf counted apart from concurrent callers'."""


class ScimError(Exception):
    """The SCIM server answered with an error (or not at all)."""

    def __init__(self, message: str, *, status: int | None = None, scim_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.scim_type = scim_type


class ScimNotFound(ScimError):
    """404: the resource is not there."""


class ScimConflict(ScimError):
    """409, with or without ``scimType``: the resource exists already (or was changed meanwhile)."""


class ScimTransientError(ScimError):
    """The server is unreachable, overloaded (429) or failing (5xx): retrying may succeed."""


class ScimRefused(ScimError):
    """A 4xx (or 501) that the same request can never turn into a success: a person must act."""


class ScimDiscoveryError(ScimRefused):
    """Discovery is missing or malformed and this client does not allow the core-schema fallback."""


PERMANENT_STATUSES = frozenset({400, 401, 403, 405, 406, 410, 411, 413, 414, 415, 422, 501})


def _error_detail(response: httpx2.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:300]
    if not isinstance(body, dict):
        return None, str(body)[:300]
    scim_type = body.get("scimType")
    return (str(scim_type) if scim_type else None), str(body.get("detail") or "")[:300]


@dataclass
class Page:
    resources: list[dict[str, Any]]
    total: int


def parse_list(body: object) -> Page:
    """A ListResponse, leniently: ``totalResults`` defaults to what the page holds."""
    if not isinstance(body, dict):
        raise ValueError(f"not a SCIM ListResponse: {str(body)[:200]}")
    resources = body.get("Resources", body.get("resources", []))
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise ValueError("a SCIM ListResponse whose Resources is not a list of objects")
    total = body.get("totalResults")
    return Page(resources, int(total) if isinstance(total, int | str) and str(total).isdigit() else len(resources))


@dataclass
class Endpoints:
    users: str = "/Users"
    groups: str = "/Groups"
    source: Literal["discovered", "core_fallback"] = "core_fallback"
    """Whether the endpoints came from the server's /ResourceTypes or from RFC 7643's core schemas."""
    problem: str | None = None
    """Why discovery was not used, when it was not."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context (the system's trust store, as httpx builds it) for every SCIM client of this
    process: building one loads the CA store, tens of milliseconds that a client per IAM endpoint
    would otherwise pay again each time one is opened."""
    return httpx2.create_ssl_context()


@dataclass
class ScimHttp:
    """One client's SCIM base URL over HTTP, counting every request it sends (per method and kind)."""

    base_url: str
    token: str | None = None
    timeout_seconds: float = 10.0
    counts: Counter[str] = field(default_factory=Counter)
    _http: httpx2.AsyncClient | None = field(default=None, init=False, repr=False)

    def client(self) -> httpx2.AsyncClient:
        if self._http is None:
            headers = {"Accept": SCIM_JSON}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._http = httpx2.AsyncClient(
                base_url=self.base_url.rstrip("/"),
                headers=headers,
                timeout=self.timeout_seconds,
                verify=tls_context(),
                event_hooks={"request": [self._count]},
            )
        return self._http

    async def _count(self, request: httpx2.Request) -> None:
        path = request.url.path.rstrip("/")
        base = urlsplit(self.base_url).path.rstrip("/")
        parts = path[len(base) :].strip("/").split("/") if path.startswith(base) else path.strip("/").split("/")
        kind = parts[0] if parts and parts[0] else "/"
        key = f"{request.method} {kind}{'/{id}' if len(parts) > 1 else ''}"
        self.counts[key] += 1
        mine = REQUESTS_IN_THIS_TASK.get()
        if mine is not None:
            mine[key] += 1

    @property
    def is_open(self) -> bool:
        """Whether this client holds an open HTTP connection pool (it opens one on its first request)."""
        return self._http is not None and not self._http.is_closed

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = None

    async def request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: object = None
    ) -> Any:
        """Send one request; return the JSON body (None when empty) or raise a typed ScimError."""
        what = f"{method} {self.base_url.rstrip('/')}{path}"
        try:
            response = await self.client().request(
                method,
                path,
                params=params,
                json=json,
                headers={"Content-Type": SCIM_JSON} if json is not None else None,
            )
        except httpx2.TransportError as error:
            raise ScimTransientError(f"{what}: the SCIM server is unreachable ({error!r})") from error
        if response.is_success:
            if not response.content.strip():
                return None
            try:
                return response.json()
            except ValueError:
                raise ScimRefused(f"{what}: answered {response.status_code} with a body that is not JSON") from None
        scim_type, detail = _error_detail(response)
        status = response.status_code
        message = f"{what}: {status}" + (f" {scim_type}" if scim_type else "") + (f": {detail}" if detail else "")
        if status == 404:
            raise ScimNotFound(message, status=status, scim_type=scim_type)
        if status == 409:
            raise ScimConflict(message, status=status, scim_type=scim_type)
        if status in PERMANENT_STATUSES:
            raise ScimRefused(message, status=status, scim_type=scim_type)
        raise ScimTransientError(message, status=status, scim_type=scim_type)

    async def list_all(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every result of a query, page by page (servers may cap a page below what was asked)."""
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        start = 1
        for _ in range(MAX_LIST_PAGES):
            page = parse_list(
                await self.request("GET", path, params={**params, "startIndex": start, "count": LIST_PAGE_SIZE})
            )
            ids = {str(r.get("id")) for r in page.resources}
            if page.resources and ids <= seen:
                raise ScimRefused(f"GET {self.base_url}{path}: the server ignores startIndex (the same page again)")
            seen |= ids
            found.extend(page.resources)
            if not page.resources or len(found) >= page.total:
                return found
            start += len(page.resources)
        raise ScimRefused(f"GET {self.base_url}{path}: more than {MAX_LIST_PAGES} pages of results")

    async def count(self, path: str, params: dict[str, Any]) -> int:
        """How many resources match, without reading them (``count=0`` is RFC 7644's way to ask)."""
        page = parse_list(await self.request("GET", path, params={**params, "count": 1}))
        return page.total if page.resources else 0

    async def discover(self, allow_core_fallback: bool) -> Endpoints:
        """The User and Group endpoints from /ResourceTypes, else RFC 7643's core ones (if allowed)."""
        try:
            body = await self.request("GET", "/ResourceTypes")
            types = [ResourceType.model_validate(r) for r in parse_list(body).resources]
            by_schema = {str(t.schema_): t.endpoint for t in types if t.endpoint}
            users, groups = by_schema[User.__schema__], by_schema[Group.__schema__]
        except ScimTransientError:
            raise
        except (ScimError, ValueError, KeyError) as error:
            problem = f"discovery at {self.base_url}/ResourceTypes is missing or malformed: {error}"
            if not allow_core_fallback:
                raise ScimDiscoveryError(problem + " (this client does not allow the core-schema fallback)") from None
            return Endpoints(problem=problem)
        return Endpoints(self._relative(users), self._relative(groups), source="discovered")

    def _relative(self, endpoint: str) -> str:
        """Servers give the endpoint relative to the base URL (``/Users``) or as a full path or URL."""
        path = urlsplit(endpoint).path if "://" in endpoint else endpoint
        base = urlsplit(self.base_url).path.rstrip("/")
        if base and path.startswith(base + "/"):
            path = path[len(base) :]
        return "/" + path.strip("/")
