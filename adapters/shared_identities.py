"""One identity in one IAM, granted by several engagements: the union of what each grants.

Two engagements of one client may staff the same engineer, who then has one identity in that
client's IAM. Each engagement's current grants are a row of ``identity_grants``; a change to the
identity is made under a PostgreSQL advisory lock per (IAM, userName), held across the SCIM calls,
so that two engagements never converge the same identity at once on different unions.

The database must never delay a revocation: reaching it, taking the lock and reading the other
engagements' grants is bounded by a short timeout, and the caller decides what to do without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.db_schema import identity_grants

DEFAULT_LOOKUP_TIMEOUT_SECONDS = 3.0
DEFAULT_LOCK_WAIT_SECONDS = 30.0
"""How long a convergence waits behind another engagement's convergence of the same identity."""


class SharedLookupUnavailable(RuntimeError):
    """The database could not be reached, locked or read within the lookup timeout."""


@dataclass(frozen=True)
class OtherGrants:
    groups: frozenset[str]
    """Every group some other live engagement grants this identity."""
    active: bool
    """Whether some other live engagement needs the identity active."""
    engagements: tuple[str, ...]
    """The other engagements that grant anything."""


@dataclass
class IdentityClaim:
    """The lock on one identity, the other engagements' grants, and the write of this one's."""

    _conn: AsyncConnection
    iam_url: str
    user_name_lower: str
    engagement_id: str
    others: OtherGrants

    async def save(self, groups: frozenset[str], active: bool) -> None:
        values = {"groups": sorted(groups), "active": active, "updated_at": datetime.now(UTC)}
        await self._conn.execute(
            insert(identity_grants)
            .values(
                iam_url=self.iam_url, user_name_lower=self.user_name_lower, engagement_id=self.engagement_id, **values
            )
            .on_conflict_do_update(index_elements=["iam_url", "user_name_lower", "engagement_id"], set_=values)
        )


class SharedIdentities:
    def __init__(
        self,
        engine: AsyncEngine,
        lookup_timeout_seconds: float = DEFAULT_LOOKUP_TIMEOUT_SECONDS,
        lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    ) -> None:
        self._engine = engine
        self._timeout = lookup_timeout_seconds
        self._lock_wait = lock_wait_seconds

    @contextlib.asynccontextmanager
    async def claim(self, iam_url: str, user_name: str, engagement_id: str) -> AsyncIterator[IdentityClaim]:
        """Lock the identity and read the other engagements' grants (or raise SharedLookupUnavailable
        within the timeout); this engagement's grants are written and the lock released on exit."""
        user = user_name.lower()
        iam_url = iam_url.rstrip("/")  # one IAM, however its URL was written
        conn: AsyncConnection | None = None
        try:
            async with asyncio.timeout(self._timeout):
                conn = await self._engine.connect()
                await conn.begin()
                await conn.execute(
                    text("SELECT set_config('lock_timeout', :limit, true)"),
                    {"limit": f"{int(self._lock_wait * 1000)}ms"},
                )
            # Waiting behind another engagement's convergence of this identity is not an outage: it has
            # a bound of its own (lock_timeout, and the same bound here should the server stop answering).
            async with asyncio.timeout(self._lock_wait + self._timeout):
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:iam), hashtext(:user))"),
                    {"iam": iam_url, "user": user},
                )
            async with asyncio.timeout(self._timeout):
                rows = (
                    await conn.execute(
                        select(identity_grants).where(
                            and_(
                                identity_grants.c.iam_url == iam_url,
                                identity_grants.c.user_name_lower == user,
                                identity_grants.c.engagement_id != engagement_id,
                            )
                        )
                    )
                ).all()
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), self._timeout)
            raise SharedLookupUnavailable(f"shared-identity lookup failed: {error!r}") from error
        granting = [r for r in rows if r.groups or r.active]
        others = OtherGrants(
            groups=frozenset(g for r in granting for g in r.groups),
            active=any(r.active for r in granting),
            engagements=tuple(sorted(r.engagement_id for r in granting)),
        )
        try:
            yield IdentityClaim(conn, iam_url, user, engagement_id, others)
            await conn.commit()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def grants(self, iam_url: str, user_name: str) -> dict[str, tuple[list[str], bool]]:
        """Every engagement's row for this identity: groups and active (for tests and reports)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(identity_grants).where(
                    and_(
                        identity_grants.c.iam_url == iam_url.rstrip("/"),
                        identity_grants.c.user_name_lower == user_name.lower(),
                    )
                )
            )
            return {r.engagement_id: (list(r.groups), bool(r.active)) for r in rows}
