"""SQL for the screening provider (migration 0005): which check workflow owns which candidate, so a
webhook about a candidate reaches its workflow, and the webhook events already handled (by event id:
Checkr's signature has no timestamp, so a replayed post is caught here)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Column, Index, MetaData, String, Table, Text, select, update
from sqlalchemy.dialects.postgresql import insert

from adapters.db import PostgresStore
from adapters.db_schema import timestamp, written_at

# Mirrors migrations/versions/0005_screening.py, on a metadata of its own so that the shared schema
# module stays as it is (nothing creates tables from metadata: Alembic does).
metadata = MetaData()

screening_checks = Table(
    "screening_checks",
    metadata,
    Column("check_workflow_id", String(200), primary_key=True),
    Column("engagement_id", String(80), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("candidate_id", String(64), nullable=False),
    Column("invitation_id", String(64)),
    written_at("created_at"),
    # A provider's webhook names the candidate: the check it belongs to is found by this index.
    Index("ix_screening_checks_candidate", "provider", "candidate_id"),
)

screening_events = Table(
    "screening_events",
    metadata,
    Column("provider", String(20), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("object_id", String(64)),
    written_at("received_at"),
    timestamp("handled_at"),
    Column("outcome", Text),
)


class ScreeningStore(PostgresStore):
    async def link(
        self, *, check_workflow_id: str, engagement_id: str, provider: str, candidate_id: str, invitation_id: str | None
    ) -> None:
        statement = insert(screening_checks).values(
            check_workflow_id=check_workflow_id,
            engagement_id=engagement_id,
            provider=provider,
            candidate_id=candidate_id,
            invitation_id=invitation_id,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["check_workflow_id"],
            set_={"candidate_id": candidate_id, "invitation_id": invitation_id},
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement)

    async def checks_of_candidate(self, provider: str, candidate_id: str) -> list[tuple[str, str | None]]:
        """(check workflow id, invitation id) of every check opened for this candidate, newest first."""
        query = (
            select(screening_checks.c.check_workflow_id, screening_checks.c.invitation_id)
            .where(screening_checks.c.provider == provider, screening_checks.c.candidate_id == candidate_id)
            .order_by(screening_checks.c.created_at.desc())
            .limit(10)
        )
        async with self._engine.connect() as conn:
            return [(row[0], row[1]) for row in await conn.execute(query)]

    async def claim_event(
        self, provider: str, event_id: str, event_type: str, object_id: str | None
    ) -> Literal["new", "handled"]:
        """Record an event as received; ``handled`` when it was handled before (a duplicate or a replay).
        An event received but never handled (the endpoint failed) may be handled again."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(screening_events)
                .values(provider=provider, event_id=event_id, event_type=event_type, object_id=object_id)
                .on_conflict_do_nothing()
            )
            handled = await conn.scalar(
                select(screening_events.c.handled_at).where(
                    screening_events.c.provider == provider, screening_events.c.event_id == event_id
                )
            )
        return "handled" if handled is not None else "new"

    async def event_handled(self, provider: str, event_id: str, outcome: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(screening_events)
                .where(screening_events.c.provider == provider, screening_events.c.event_id == event_id)
                .values(handled_at=datetime.now(UTC), outcome=outcome[:500])
            )
