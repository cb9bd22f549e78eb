"""The email outbox in PostgreSQL: one row per message key, so a message is handed over once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db_schema import email_outbox


class OutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim_message(self, values: dict[str, Any]) -> Row[Any]:
        """Insert the message as pending unless its key exists; return the row as stored."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(email_outbox)
                .values(state="pending", **values)
                .on_conflict_do_nothing(index_elements=["message_key"])
            )
            row = (
                await conn.execute(select(email_outbox).where(email_outbox.c.message_key == values["message_key"]))
            ).one()
            return row

    async def mark_message(
        self,
        message_key: str,
        *,
        state: str,
        provider: str,
        provider_message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(email_outbox)
                .where(email_outbox.c.message_key == message_key)
                .values(
                    state=state,
                    provider=provider,
                    provider_message_id=provider_message_id,
                    error=error,
                    attempts=email_outbox.c.attempts + 1,
                    sent_at=func.now() if state == "sent" else None,
                )
            )

    async def outbox(self, engagement_id: str) -> list[Row[Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(email_outbox)
                .where(email_outbox.c.engagement_id == engagement_id)
                .order_by(email_outbox.c.created_at, email_outbox.c.message_key)
            )
            return list(result.all())
