"""Migrations that several replicas can start at once: whoever takes the PostgreSQL advisory lock
first runs the Alembic upgrade, the others wait for it and then find the schema already at head.

The lock is a session lock held on a connection of its own for the whole upgrade, so it is released
when the upgrade ends, and also when the process dies (PostgreSQL drops a dead session's locks).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from adapters.db import async_url, migrate

MIGRATION_LOCK_KEY = 0x656E6761_6765  # "engage" in ASCII: one bigint for this application's migrations
"""The advisory lock id; any process that changes this application's schema takes it first."""


async def migrate_locked(url: str, *, lock_key: int = MIGRATION_LOCK_KEY) -> None:
    """``adapters.db.migrate(url)`` under ``pg_advisory_lock(lock_key)``; waits while another holds it."""
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key})
            try:
                await migrate(url)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key})
                await conn.commit()
    finally:
        await engine.dispose()
