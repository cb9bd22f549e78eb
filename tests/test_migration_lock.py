"""Replicas that start together migrate one after the other (adapters.migration_lock), on a real
PostgreSQL database created fresh for each test."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from alembic.config import Config
from alembic.script import ScriptDirectory

from adapters.db import PROJECT_ROOT, MigrationFailed, async_url, migrate, start_embedded_postgres
from adapters.migration_lock import MIGRATION_LOCK_KEY, migrate_locked
from tests.conftest import LOCAL_POSTGRES, _reachable

ADVISORY = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
"""This database's advisory locks (pg_locks covers the whole server)."""


def head_revision() -> str:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@pytest_asyncio.fixture
async def fresh_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """An empty database (no schema at all) on the same server the rest of the suite uses."""
    admin = os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES)
    if not await _reachable(admin):
        admin = start_embedded_postgres(tmp_path_factory.mktemp("pgdata-lock"))
    admin = admin.replace("postgresql+asyncpg://", "postgresql://")
    name = f"migration_lock_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base, _, query = admin.partition("?")
    yield base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def test_two_replicas_migrating_at_once_both_succeed(fresh_database: str) -> None:
    await asyncio.gather(migrate_locked(async_url(fresh_database)), migrate_locked(async_url(fresh_database)))
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
        assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
        assert await conn.fetchval("SELECT to_regclass('audit_log') IS NOT NULL")
        assert await conn.fetchval(ADVISORY) == 0, "lock released"
    finally:
        await conn.close()


async def test_a_replica_waits_for_the_one_holding_the_lock(fresh_database: str) -> None:
    holder = await asyncpg.connect(fresh_database)
    observer = await asyncpg.connect(fresh_database)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        waiting = asyncio.create_task(migrate_locked(async_url(fresh_database)))
        # Wait (bounded) until PostgreSQL itself shows the replica queued behind the lock.
        for _ in range(600):
            queued = await observer.fetchval(ADVISORY + " AND NOT granted")
            if queued:
                break
            await asyncio.sleep(0.05)
        assert queued == 1, "the replica never asked for the lock"
        assert not waiting.done()
        assert await observer.fetchval("SELECT to_regclass('alembic_version') IS NULL"), "it migrated without the lock"
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await asyncio.wait_for(waiting, 120)
        assert await observer.fetchval("SELECT version_num FROM alembic_version") == head_revision()
    finally:
        await holder.close()
        await observer.close()


async def test_the_upgrade_runs_in_a_child_and_leaves_alembic_out_of_the_worker(fresh_database: str) -> None:
    # The worker migrates once at start: Alembic, Mako and Pygments would stay in its memory all its life.
    program = (
        "import asyncio, os, sys; from adapters.migration_lock import migrate_locked;"
        " asyncio.run(migrate_locked(os.environ['UPGRADE_THIS']));"
        " print(sorted({m.split('.')[0] for m in sys.modules} & {'alembic', 'mako', 'pygments'}))"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        program,
        cwd=PROJECT_ROOT,
        env={**os.environ, "UPGRADE_THIS": async_url(fresh_database)},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    assert child.returncode == 0
    assert out.decode().strip().splitlines()[-1] == "[]"
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT version_num FROM alembic_version") == head_revision()
    finally:
        await conn.close()


async def test_a_failed_upgrade_raises(fresh_database: str) -> None:
    missing = fresh_database.rsplit("/", 1)[0] + f"/absent_{uuid.uuid4().hex[:8]}"
    with pytest.raises(MigrationFailed, match="exit 1"):
        await migrate(async_url(missing))
