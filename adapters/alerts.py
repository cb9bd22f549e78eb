"""Admin alerts: recorded in PostgreSQL (an admin's queue) and logged at ERROR for the log pipeline.

An alert is keyed, so a retried activity raises it once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert

from adapters.audit_writer import AuditEntry, append_chained
from adapters.db import PostgresStore
from adapters.db_schema import alerts

log = logging.getLogger("alerts")

Severity = Literal["warning", "critical"]


class AlertNotOpen(LookupError):
    """No such alert, or it was already acknowledged."""


class AlertStore(PostgresStore):
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
            # The message names people and reasons: it stays in the table (`alerts`), not in the log.
            log.error("ALERT %s [%s] %s (read it with `alerts %s`)", severity, engagement_id, kind, engagement_id)

    async def alerts(self, engagement_id: str) -> list[Row[Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(alerts).where(alerts.c.engagement_id == engagement_id).order_by(alerts.c.alert_id)
            )
            return list(result.all())

    async def open_alerts(self, engagement_id: str | None = None) -> list[Row[Any]]:
        """Alerts nobody has acknowledged yet, oldest first."""
        query = select(alerts).where(alerts.c.acknowledged_at.is_(None)).order_by(alerts.c.raised_at, alerts.c.alert_id)
        if engagement_id is not None:
            query = query.where(alerts.c.engagement_id == engagement_id)
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def acknowledge(self, alert_id: int, *, by: str, source: str, reason: str, at: datetime) -> Row[Any]:
        """Mark one open alert acknowledged and record who, how known, when and why in the audit log,
        in one transaction: an acknowledgement that is not audited does not happen."""
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    update(alerts)
                    .where(alerts.c.alert_id == alert_id, alerts.c.acknowledged_at.is_(None))
                    .values(
                        acknowledged_at=at, acknowledged_by=by, acknowledged_by_source=source, acknowledgement=reason
                    )
                    .returning(alerts)
                )
            ).first()
            if row is None:
                raise AlertNotOpen(f"no open alert {alert_id} (unknown, or already acknowledged)")
            details = {"alert_id": alert_id, "kind": row.kind, "reason": reason, "actor_source": source}
            entry = AuditEntry(f"alert-acknowledged:{alert_id}", at, by, "alert_acknowledged", details)
            await append_chained(conn, row.engagement_id, entry)
        log.info("alert %s [%s] %s acknowledged", alert_id, row.engagement_id, row.kind)
        acknowledged: Row[Any] = row
        return acknowledged
