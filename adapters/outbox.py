"""The email outbox in PostgreSQL: one row per message key, and where that message stands.

Every change of state is a conditional UPDATE (``WHERE state IN ...``), so two writers that race
(a retried attempt and a late one, the activity and the webhook) can never move a row backwards:
the one that comes second finds the row already moved and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row, case, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.db import PostgresStore, retrying
from adapters.db_schema import email_events, email_outbox
from domain.delivery import MessageState, event_state, furthest, states_before

T = TypeVar("T")


def _values(states: Iterable[MessageState]) -> list[str]:
    return [s.value for s in states]


class OutboxStore(PostgresStore):
    async def claim_message(self, values: dict[str, Any]) -> Row[Any]:
        """Insert the message as pending unless its key exists; return the row as stored."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(email_outbox)
                .values(state=MessageState.PENDING.value, **values)
                .on_conflict_do_nothing(index_elements=["message_key"])
            )
            return await _row(conn, values["message_key"])

    async def claim_for_sending(self, values: dict[str, Any], *, provider: str) -> tuple[Row[Any], bool]:
        """Insert the message as being handed over by this attempt (``sending``, first attempt), in one
        statement; True with the row if it was inserted, else False with the row as stored (another
        attempt had it: its state says what to do)."""

        async def claim(conn: AsyncConnection) -> tuple[Row[Any], bool]:
            inserted = (
                await conn.execute(
                    insert(email_outbox)
                    .values(
                        state=MessageState.SENDING.value,
                        state_changed_at=func.now(),
                        provider=provider,
                        attempts=1,
                        **values,
                    )
                    .on_conflict_do_nothing(index_elements=["message_key"])
                    .returning(*email_outbox.c)
                )
            ).first()
            if inserted is not None:
                return inserted, True
            return await _row(conn, values["message_key"]), False

        return await self._single(claim)

    async def message(self, message_key: str) -> Row[Any]:
        return await self._single(lambda conn: _row(conn, message_key))

    async def _single(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Statements that need no transaction of their own (each is atomic), without BEGIN and COMMIT;
        again on a stale connection."""

        async def once() -> T:
            async with self._engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await work(autocommit)

        return await retrying(once)

    async def begin_sending(self, message_key: str, *, from_state: MessageState, provider: str) -> bool:
        """Record that the message is about to be handed over; False when the row is no longer in from_state."""
        return await self._move(
            message_key,
            {from_state},
            MessageState.SENDING,
            provider=provider,
            attempts=email_outbox.c.attempts + 1,
            error=None,
        )

    async def mark_sent(self, message_key: str, *, provider: str, provider_message_id: str | None) -> None:
        """Accepted by the provider. A row that delivery events already moved further keeps its state
        (one statement: the state moves only from a state before ``sent``, the receipt is kept either way)."""
        moves = email_outbox.c.state.in_(_values(states_before(MessageState.SENT)))

        async def mark(conn: AsyncConnection) -> None:
            await conn.execute(
                update(email_outbox)
                .where(email_outbox.c.message_key == message_key)
                .values(
                    state=case((moves, MessageState.SENT.value), else_=email_outbox.c.state),
                    state_changed_at=case((moves, func.now()), else_=email_outbox.c.state_changed_at),
                    provider=provider,
                    provider_message_id=provider_message_id,
                    error=None,
                    sent_at=func.coalesce(email_outbox.c.sent_at, func.now()),
                )
            )

        await self._single(mark)

    async def mark_failed(self, message_key: str, *, provider: str, error: str) -> None:
        """Refused for good by the provider."""
        await self._move(
            message_key,
            {MessageState.SENDING, MessageState.PENDING, MessageState.UNKNOWN},
            MessageState.FAILED,
            provider=provider,
            error=error,
        )

    async def release(self, message_key: str, *, error: str) -> None:
        """The provider certainly did not take the message (429, 5xx, unreachable): back to pending."""
        await self._move(message_key, {MessageState.SENDING}, MessageState.PENDING, error=error)

    async def mark_unknown(self, message_key: str, *, at: datetime, error: str | None = None) -> None:
        """A send with no known outcome; the reconciliation window starts ``at``."""
        await self._move(message_key, {MessageState.SENDING}, MessageState.UNKNOWN, unknown_since=at, error=error)

    async def settle_from_events(self, message_key: str) -> MessageState | None:
        """If any delivery event arrived for a message of unknown outcome, it was sent: record how far it got.

        Returns the row's new state, or None when no event has arrived (the outcome is still unknown).
        """
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(email_events.c.event, email_events.c.bounce_type).where(
                        email_events.c.message_key == message_key
                    )
                )
            ).all()
            if not rows:
                return None
            reached = furthest([s for s in (event_state(r.event, r.bounce_type) for r in rows) if s is not None])
            target = reached or MessageState.SENT  # only engagement events (open, click): it was sent all the same
            await advance(conn, message_key, target, sent_at=func.coalesce(email_outbox.c.sent_at, func.now()))
            row = await _row(conn, message_key)
            return MessageState(row.state)

    async def _move(
        self, message_key: str, from_states: set[MessageState], to_state: MessageState, **values: Any
    ) -> bool:

        async def move(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                update(email_outbox)
                .where(email_outbox.c.message_key == message_key)
                .where(email_outbox.c.state.in_(_values(from_states)))
                .values(state=to_state.value, state_changed_at=func.now(), **values)
            )
            return bool(result.rowcount)

        return await self._single(move)

    async def outbox(self, engagement_id: str) -> list[Row[Any]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(
                select(email_outbox)
                .where(email_outbox.c.engagement_id == engagement_id)
                .order_by(email_outbox.c.created_at, email_outbox.c.message_key)
            )
            return list(result.all())


async def advance(conn: AsyncConnection, message_key: str, target: MessageState, **values: Any) -> None:
    """Move a message forward to ``target`` (never back): the one way delivery facts change a row's
    state, shared by the outbox's reconciliation and the delivery-event webhook (same transaction)."""
    await conn.execute(
        update(email_outbox)
        .where(email_outbox.c.message_key == message_key)
        .where(email_outbox.c.state.in_(_values(states_before(target))))
        .values(state=target.value, state_changed_at=func.now(), **values)
    )


async def _row(conn: AsyncConnection, message_key: str) -> Row[Any]:
    return (await conn.execute(select(email_outbox).where(email_outbox.c.message_key == message_key))).one()
