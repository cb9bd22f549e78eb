"""Reading the engagement's records for auditors: the audit chain verified, and the evidence pack's data.

Read-only: it never writes (the pack and the verification are built from what the workflow recorded).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.audit_chain import ChainReport, verify
from adapters.db_schema import audit_log


async def engagement_ids_in_audit(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(select(audit_log.c.engagement_id).distinct().order_by(audit_log.c.engagement_id))
        return [str(r) for r in result.scalars()]


async def chain_reports(engine: AsyncEngine, engagement_ids: Sequence[str] | None = None) -> list[ChainReport]:
    """Each engagement's chain walked in insertion order (every engagement in the log when None)."""
    ids = list(engagement_ids) if engagement_ids is not None else await engagement_ids_in_audit(engine)
    reports = []
    async with engine.connect() as conn:
        for engagement_id in ids:
            result = await conn.execute(
                select(audit_log).where(audit_log.c.engagement_id == engagement_id).order_by(audit_log.c.entry_id)
            )
            reports.append(verify(engagement_id, (row._mapping for row in result)))
    return reports
