"""PostgreSQL storage through SQLAlchemy 2 async + asyncpg.

Every write is idempotent, because activities are retried: rows are keyed by business keys and
written with ON CONFLICT, audit entries by the key of the activity attempt that wrote them.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Row, Table, and_, event, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from adapters.audit_writer import AuditEntry, append_chained
from adapters.db_schema import (
    access_grants,
    audit_log,
    documents,
    engagements,
    engineers,
    handover_sessions,
    questions,
)
from domain.spec import EngagementSpec
from domain.state import DocumentRecord, EngineerState, HandoverSession, Question
from domain.vocabulary import Phase

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def async_url(url: str) -> str:
    """Accept postgres:// and postgresql:// URLs as well, and use the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")


PING_AFTER_IDLE_SECONDS = 30.0
"""A pooled connection left unused this long is pinged before it is handed out (see ``create_engine``)."""


def create_engine(url: str, ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> AsyncEngine:
    """No pre-ping on every checkout (three round trips each): a connection that has waited in the pool
    for ``ping_after_idle`` seconds or more is pinged first, and replaced if the server dropped it (a
    restart, an idle timeout), so every adapter gets a live one after a quiet spell. A connection in
    steady use is not pinged: a write that still meets one the server just dropped is done again on a
    fresh one (``retrying``), and the pool drops every connection older than that failure."""
    engine = create_async_engine(async_url(url), pool_size=5, max_overflow=5, pool_pre_ping=False)
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _rested(dbapi_connection: Any, record: Any) -> None:
        record.info["rested_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_rested(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        rested_at = record.info.pop("rested_at", None)
        if rested_at is None or time.monotonic() - rested_at < ping_after_idle:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:  # the pool discards it and checks out another (or connects anew)
            raise DisconnectionError("a pooled connection the server dropped while it rested") from error

    return engine


T = TypeVar("T")
STALE_ATTEMPTS = 3
"""A pool can hold several connections the server closed (a restart): each attempt discards one."""


def stale_connection(error: BaseException) -> bool:
    """The pooled connection was closed under us (the server restarted, an idle timeout): the
    transaction on it never committed, so the work can be done again on a fresh one."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, asyncpg.ConnectionDoesNotExistError):
            return True
        if isinstance(current, asyncpg.InterfaceError) and "closed" in str(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False


async def retrying(work: Callable[[], Awaitable[T]]) -> T:
    """Do ``work`` (one transaction, idempotent like every write here), again on a stale connection."""
    for attempt in range(1, STALE_ATTEMPTS + 1):
        try:
            return await work()
        except (DBAPIError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError) as error:
            if attempt == STALE_ATTEMPTS or not stale_connection(error):
                raise
    raise AssertionError("unreachable")  # the last attempt returns or raises


MIGRATION_URL = "ALEMBIC_DATABASE_URL"
"""How ``migrate`` hands the database to its child: the environment, never the command line (where
``ps`` would show a password)."""


class MigrationFailed(RuntimeError):
    pass


def migrate_sync(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = async_url(url)
    command.upgrade(config, "head")


async def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision, in a child process: Alembic and its templates
    (Mako, Pygments) are about 9 MB of a worker's memory (measured) that it would otherwise keep all its
    life for one use at start. The child's log goes where this process's goes."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"import os, adapters.db as db; db.migrate_sync(os.environ[{MIGRATION_URL!r}])",
        cwd=PROJECT_ROOT,
        env={**os.environ, MIGRATION_URL: url},
    )
    if await child.wait() != 0:
        raise MigrationFailed(f"the Alembic upgrade failed (exit {child.returncode}); its error is in the log above")


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) an embedded PostgreSQL from the pgserver package; returns its URL."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir.resolve(), cleanup_mode="stop")  # type: ignore[attr-defined]
    return async_url(server.get_uri())


Write = Callable[[AsyncConnection], Awaitable[None]]
"""The record half of one ``EngagementStore._write`` transaction."""


def _upsert(table: Table, engagement_id: str, key: dict[str, Any], values: dict[str, Any]) -> Write:
    """Insert one of an engagement's rows (keyed by the engagement and ``key``), or update it to ``values``."""

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(
            insert(table)
            .values(engagement_id=engagement_id, **key, **values)
            .on_conflict_do_update(index_elements=["engagement_id", *key], set_=values)
        )

    return write


class PostgresStore:
    """A store over the process's one engine (``create_engine``): its pool serves every store, and
    ``engine`` hands it to another store of the same database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine


class EngagementStore(PostgresStore):
    """The engagement's records: the audit trail and evidence a client or an auditor can be shown."""

    async def record_engagement(
        self, engagement_id: str, spec: EngagementSpec, at: datetime, audit: AuditEntry | None = None
    ) -> None:
        async def write(conn: AsyncConnection) -> None:
            await conn.execute(
                insert(engagements)
                .values(
                    engagement_id=engagement_id,
                    contract_id=spec.contract_id,
                    client_name=spec.client.name,
                    engagement_type=spec.engagement_type.value,
                    phase=Phase.AWAITING_NDA.value,
                    nda_reference=spec.agreement.nda_reference,
                    ip_assignment_clause=spec.agreement.ip_assignment_clause,
                    spec=spec.model_dump(mode="json"),
                    created_at=at,
                    updated_at=at,
                )
                .on_conflict_do_nothing(index_elements=["engagement_id"])
            )

        await self._write(engagement_id, write, audit)

    async def record_phase(
        self,
        engagement_id: str,
        phase: Phase,
        at: datetime,
        timeline: dict[str, datetime | None],
        audit: AuditEntry | None = None,
    ) -> None:
        allowed = {"nda_signed_at", "notice_given_at", "end_date", "closed_at"}
        values: dict[str, Any] = {k: v for k, v in timeline.items() if k in allowed}

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(
                update(engagements)
                .where(engagements.c.engagement_id == engagement_id)
                .values(phase=phase.value, updated_at=at, **values)
            )

        await self._write(engagement_id, write, audit)

    async def save_engineer(
        self, engagement_id: str, engineer: EngineerState, at: datetime, audit: AuditEntry | None = None
    ) -> None:
        values = {
            "name": engineer.spec.name,
            "role": engineer.spec.role,
            "production_access": engineer.spec.production_access,
            "jurisdiction": engineer.spec.jurisdiction,
            "check_status": engineer.check.value,
            "scim_user_id": engineer.scim_user_id,
            "removed_at": at if engineer.removed else None,
            "updated_at": at,
        }

        key = {"email": engineer.email.lower()}
        await self._write(engagement_id, _upsert(engineers, engagement_id, key, values), audit)

    async def record_access_change(
        self,
        *,
        engagement_id: str,
        engineer_email: str,
        granted: Sequence[str],
        revoked: Sequence[str],
        actor: str,
        at: datetime,
        evidence: dict[str, Any],
        audit: AuditEntry | None = None,
    ) -> None:
        """Record grants and revocations that the IAM has confirmed by read-back (the evidence)."""
        email = engineer_email.lower()

        async def write(conn: AsyncConnection) -> None:
            for group in granted:
                await conn.execute(
                    insert(access_grants)
                    .values(
                        engagement_id=engagement_id,
                        engineer_email=email,
                        group_name=group,
                        granted_at=at,
                        granted_by=actor,
                        grant_evidence=evidence,
                    )
                    .on_conflict_do_nothing(
                        index_elements=["engagement_id", "engineer_email", "group_name"],
                        index_where=access_grants.c.revoked_at.is_(None),
                    )
                )
            if revoked:
                await conn.execute(
                    update(access_grants)
                    .where(
                        and_(
                            access_grants.c.engagement_id == engagement_id,
                            access_grants.c.engineer_email == email,
                            access_grants.c.group_name.in_(list(revoked)),
                            access_grants.c.revoked_at.is_(None),
                        )
                    )
                    .values(revoked_at=at, revoked_by=actor, revoke_evidence=evidence)
                )

        await self._write(engagement_id, write, audit)

    async def append_audit(
        self, *, engagement_id: str, event_key: str, at: datetime, actor: str, action: str, details: dict[str, Any]
    ) -> None:
        await self._write(engagement_id, None, AuditEntry(event_key, at, actor, action, details))

    async def _write(
        self,
        engagement_id: str,
        write: Write | None,
        audit: AuditEntry | None,
    ) -> None:
        """One transaction: the record and its audit entry (chained), again on a stale connection."""

        async def once() -> None:
            async with self._engine.begin() as conn:
                if write is not None:
                    await write(conn)
                if audit is not None:
                    await append_chained(conn, engagement_id, audit)

        await retrying(once)

    async def save_document(self, engagement_id: str, record: DocumentRecord, audit: AuditEntry | None = None) -> None:
        values = {
            "location": record.location,
            "delivered_at": record.delivered_at,
            "delivered_by": record.delivered_by,
        }

        key = {"name": record.name.value}
        await self._write(engagement_id, _upsert(documents, engagement_id, key, values), audit)

    async def save_session(self, engagement_id: str, session: HandoverSession, audit: AuditEntry | None = None) -> None:
        values = {
            "title": session.title,
            "starts_at": session.starts_at,
            "duration_seconds": int(session.duration.total_seconds()),
            "status": session.status,
            "held_at": session.held_at,
            "notes": session.notes,
        }

        key = {"session_id": session.session_id}
        await self._write(engagement_id, _upsert(handover_sessions, engagement_id, key, values), audit)

    async def save_question(self, engagement_id: str, question: Question, audit: AuditEntry | None = None) -> None:
        values = {
            "text": question.text,
            "asked_by": question.asked_by,
            "asked_at": question.asked_at,
            "answer": question.answer,
            "answered_by": question.answered_by,
            "answered_at": question.answered_at,
        }

        key = {"question_id": question.question_id}
        await self._write(engagement_id, _upsert(questions, engagement_id, key, values), audit)

    # ------------------------------------------------------------ reads, for reports and tests

    async def audit_entries(self, engagement_id: str) -> list[Row[Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(audit_log).where(audit_log.c.engagement_id == engagement_id).order_by(audit_log.c.entry_id)
            )
            return list(result.all())

    async def grants(self, engagement_id: str) -> list[Row[Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(access_grants)
                .where(access_grants.c.engagement_id == engagement_id)
                .order_by(access_grants.c.grant_id)
            )
            return list(result.all())
