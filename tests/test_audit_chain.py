"""The audit log is hash-chained and guarded by the database itself: the application's role may
only read and append, nobody can truncate it, and any change, removal or reordering is detected."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from adapters.audit_chain import GENESIS, link, verify
from adapters.db import EngagementStore
from adapters.evidence import chain_reports

AT = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def fill(store: EngagementStore, entries: int = 5) -> str:
    engagement = f"engagement-{uuid.uuid4().hex[:8]}"
    for i in range(entries):
        await store.append_audit(
            engagement_id=engagement,
            event_key=f"{engagement}/{i}",
            at=AT + timedelta(minutes=i),
            actor="fran",
            action="engineer_added",
            details={"engineer": f"e{i}@firm.example", "n": 1.5e20, "nested": {"b": [1, "é"], "a": None}},
        )
    return engagement


async def test_entries_chain_and_a_retry_adds_nothing(store: EngagementStore) -> None:
    engagement = await fill(store, 3)
    await store.append_audit(
        engagement_id=engagement, event_key=f"{engagement}/0", at=AT, actor="x", action="y", details={}
    )
    rows = [r._mapping for r in await store.audit_entries(engagement)]
    assert len(rows) == 3 and rows[0]["prev_hash"] == GENESIS
    assert rows[1]["prev_hash"] == rows[0]["row_hash"] == link(GENESIS, rows[0])
    [report] = await chain_reports(store.engine, [engagement])
    assert report.intact and report.entries == 3 and report.head == rows[-1]["row_hash"]


async def test_concurrent_writers_of_one_engagement_take_turns(store: EngagementStore) -> None:
    engagement = f"engagement-{uuid.uuid4().hex[:8]}"
    await asyncio.gather(
        *(
            store.append_audit(
                engagement_id=engagement, event_key=f"{engagement}/{i}", at=AT, actor="a", action="b", details={"i": i}
            )
            for i in range(12)
        )
    )
    [report] = await chain_reports(store.engine, [engagement])
    assert report.intact and report.entries == 12


async def test_the_app_role_may_only_read_and_append(store: EngagementStore, database_url: str) -> None:
    engagement = await fill(store, 2)
    conn = await asyncpg.connect(plain(database_url))
    try:
        await conn.execute("SET ROLE engagements_app")
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE engagement_id = $1", engagement) == 2
        forbidden = [
            "UPDATE audit_log SET actor = 'mallory'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_log_append_only ON audit_log",
            "SET session_replication_role = replica",
        ]
        for statement in forbidden:
            with pytest.raises(asyncpg.PostgresError) as refused:
                await conn.execute(statement)
            assert isinstance(refused.value, asyncpg.InsufficientPrivilegeError), (statement, refused.value)
        await conn.execute("RESET ROLE")
        # Even the owner cannot truncate it while the trigger stands.
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("TRUNCATE audit_log")
    finally:
        await conn.close()


async def test_tampering_is_detected_at_the_first_broken_link(store: EngagementStore, database_url: str) -> None:
    changed, removed = await fill(store), await fill(store)
    conn = await asyncpg.connect(plain(database_url))
    try:
        ids = {
            e: [
                r["entry_id"]
                for r in await conn.fetch(
                    "SELECT entry_id FROM audit_log WHERE engagement_id = $1 ORDER BY entry_id", e
                )
            ]
            for e in (changed, removed)
        }
        async with conn.transaction():  # what only the schema's owner (or a superuser) could do
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            await conn.execute(
                'UPDATE audit_log SET details = details || \'{"engineer": "someone-else"}\' WHERE entry_id = $1',
                ids[changed][2],
            )
            await conn.execute("DELETE FROM audit_log WHERE entry_id = $1", ids[removed][1])
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    finally:
        await conn.close()
    first, second = await chain_reports(store.engine, [changed, removed])
    assert first.broken is not None and first.broken.entry_id == ids[changed][2]
    assert "changed" in first.broken.reason
    assert second.broken is not None and second.broken.entry_id == ids[removed][2]
    assert "removed" in second.broken.reason


def test_verify_is_pure_and_names_a_reordering() -> None:
    rows = []
    previous = GENESIS
    for i in range(3):
        row = {"entry_id": i + 1, "engagement_id": "e", "event_key": str(i), "at": AT, "actor": "a", "action": "b"}
        row |= {"details": {"i": i}, "prev_hash": previous}
        row["row_hash"] = previous = link(previous, row)
        rows.append(row)
    assert verify("e", rows).intact
    report = verify("e", [rows[0], rows[2], rows[1]])
    assert report.broken is not None and report.broken.entry_id == 3
