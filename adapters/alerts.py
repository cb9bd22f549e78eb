"""Admin alerts: recorded in PostgreSQL (an admin's queue) and logged at ERROR for the log pipeline.

An alert is keyed, so a retried activity raises it once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db_schema import alerts

log = logging.getLogger("alerts")

Severity = Literal["warning", "critical"]


class AlertStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def raise_alert(
        self,
        *,
        engagement_id: str,
        alert_key: str,
        at: datetime,
        kind: str,
        message: str,
        severity: Severity = "critical",
        details: dict[str, Any] | None = None,
    ) -> None:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                insert(alerts)
                .values(
                    engagement_id=engagement_id,
                    alert_key=alert_key,
                    raised_at=at,
                    kind=kind,
                    severity=severity,
                    message=message,
                    details=details or {},
                )
                .on_conflict_do_nothing(index_elements=["alert_key"])
            )
        if result.rowcount:
            log.error("ALERT %s [%s] %s: %s", severity, engagement_id, kind, message)

    async def alerts(self, engagement_id: str) -> list[Row[Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(alerts).where(alerts.c.engagement_id == engagement_id).order_by(alerts.c.alert_id)
            )
            return list(result.all())
