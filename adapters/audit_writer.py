"""The audit log's SQL side: one entry appended to its engagement's hash chain (``audit_chain`` holds
the hashing), inside the caller's transaction, so an entry commits with the record it is about."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.audit_chain import GENESIS, link
from adapters.db_schema import audit_log

_CHAIN_STATE = (
    text(
        "SELECT (SELECT entry_id FROM audit_log WHERE event_key = :event_key) AS existing,"
        " (SELECT row_hash FROM audit_log WHERE engagement_id = :engagement_id"
        "  ORDER BY entry_id DESC LIMIT 1) AS last,"
        " CAST(:details AS jsonb) AS details"
    )
    .bindparams(bindparam("details", type_=JSONB))
    .columns(details=JSONB)
)
"""In one round trip: whether the entry is there already, the hash to chain to, and the details as
jsonb gives them back (what is hashed)."""


@dataclass(frozen=True)
class AuditEntry:
    """An audit entry written in the same transaction as the record it is about."""

    event_key: str
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]


async def append_chained(conn: AsyncConnection, engagement_id: str, audit: AuditEntry) -> bool:
    """Append one audit entry chained to its engagement's last one; False if its key is already there.

    Under a per-engagement transaction-level advisory lock, so two writers of one engagement take
    turns and each chains to the other's committed entry (the unique (engagement, prev_hash) index
    refuses a fork should anyone skip the lock). The details are hashed as jsonb will give them back.
    """
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended("audit:" + engagement_id, 0))))
    state = {"event_key": audit.event_key, "engagement_id": engagement_id, "details": audit.details}
    chain = (await conn.execute(_CHAIN_STATE, state)).one()
    if chain.existing is not None:
        return False
    last, stored = chain.last, chain.details
    entry = {"engagement_id": engagement_id, **dataclasses.asdict(audit), "details": stored}
    prev_hash = last or GENESIS
    await conn.execute(insert(audit_log).values(**entry, prev_hash=prev_hash, row_hash=link(prev_hash, entry)))
    return True
