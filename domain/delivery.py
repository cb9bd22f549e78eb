"""Where an outgoing message stands: the outbox's states and the one-way moves between them."""

from __future__ import annotations

from enum import StrEnum


class MessageState(StrEnum):
    """An outbox row's state. Sending moves forward only; delivery events only move it further on."""

    PENDING = "pending"
    """Recorded, not handed to the provider yet (or the provider refused it for now: 429, 5xx)."""
    SENDING = "sending"
    """About to be handed over; a retry that finds this does not know whether it was."""
    UNKNOWN = "unknown"
    """Handed over with no answer (timeout, reset, a worker that died): reconciled from events."""
    FAILED = "failed"
    """Refused for good by the provider (4xx): recorded with its error, an admin alerted."""
    SENT = "sent"
    """Accepted by the provider (202)."""
    PROCESSED = "processed"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    BLOCKED = "blocked"


HANDED_OVER = frozenset(
    {
        MessageState.SENT,
        MessageState.PROCESSED,
        MessageState.DEFERRED,
        MessageState.DELIVERED,
        MessageState.BOUNCED,
        MessageState.DROPPED,
        MessageState.BLOCKED,
    }
)
"""The provider has the message: it is never sent again."""

_RANK: dict[MessageState, int] = {
    MessageState.PENDING: 0,
    MessageState.SENDING: 1,
    MessageState.UNKNOWN: 1,
    MessageState.FAILED: 2,
    MessageState.SENT: 2,
    MessageState.PROCESSED: 3,
    MessageState.DEFERRED: 4,
    MessageState.DELIVERED: 5,
    # Terminal. A bounce may follow "delivered" (an asynchronous bounce); nothing follows these.
    MessageState.BOUNCED: 6,
    MessageState.DROPPED: 6,
    MessageState.BLOCKED: 6,
}

PROBLEM_STATES = frozenset({MessageState.BOUNCED, MessageState.DROPPED, MessageState.BLOCKED})


def event_state(event: str, bounce_type: str | None = None) -> MessageState | None:
    """The state a SendGrid delivery event stands for; None for engagement events (open, click, ...)."""
    if event == "bounce":
        return MessageState.BLOCKED if bounce_type == "blocked" else MessageState.BOUNCED
    return {
        "processed": MessageState.PROCESSED,
        "deferred": MessageState.DEFERRED,
        "delivered": MessageState.DELIVERED,
        "dropped": MessageState.DROPPED,
    }.get(event)


def states_before(target: MessageState) -> frozenset[MessageState]:
    """The states an event's ``target`` state may replace: only those strictly behind it."""
    return frozenset(s for s, rank in _RANK.items() if rank < _RANK[target])


def furthest(states: list[MessageState]) -> MessageState | None:
    return max(states, key=lambda s: _RANK[s], default=None)
