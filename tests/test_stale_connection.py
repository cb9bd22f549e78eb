"""No pre-ping on every checkout: a pooled connection the database dropped is found stale on use, and
the write is done again on a fresh one (adapters.db.retrying), for the engagement store and the email
outbox alike; a connection that rested in the pool is pinged before it is handed out, so every other
adapter (alerts, SendGrid events, screening, shared identities) gets a live one after a quiet spell."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy.exc import DBAPIError

from adapters.alerts import AlertStore
from adapters.db import EngagementStore, create_engine
from adapters.outbox import OutboxStore
from tests.conftest import free_port
from tests.tcp_proxy import TcpProxy


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=(userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}"))


async def test_writes_on_a_dropped_pooled_connection_are_done_again_on_a_fresh_one(database_url: str) -> None:
    proxy = TcpProxy(urlsplit(database_url).port or 5432, free_port())
    await proxy.up()
    engine = create_engine(through(database_url, proxy.port))
    store, outbox = EngagementStore(engine), OutboxStore(engine)
    engagement = f"stale-{uuid.uuid4().hex[:8]}"
    at = datetime(2026, 1, 5, tzinfo=UTC)
    try:
        await store.append_audit(
            engagement_id=engagement, event_key=f"{engagement}/1", at=at, actor="a", action="first", details={}
        )
        assert engine.pool.checkedin() >= 1  # type: ignore[attr-defined]
        await proxy.down()  # the database went away: every pooled connection is cut
        await proxy.up()

        await store.append_audit(
            engagement_id=engagement, event_key=f"{engagement}/2", at=at, actor="a", action="second", details={}
        )
        assert [e.action for e in await store.audit_entries(engagement)] == ["first", "second"]

        await proxy.down()
        await proxy.up()
        key = f"{engagement}/message"
        row, claimed = await outbox.claim_for_sending(
            {
                "message_key": key,
                "engagement_id": engagement,
                "step": "s",
                "kind": "nda_request",
                "recipient": "r@example.com",
                "occurrence": 0,
                "subject": "s",
                "body_text": "t",
                "body_html": "<p>t</p>",
            },
            provider="outbox",
        )
        assert claimed and row.state == "sending" and row.attempts == 1
    finally:
        await engine.dispose()
        await proxy.down()


@pytest.mark.parametrize("ping_after_idle", [0.0, 3600.0])
async def test_a_connection_that_rested_is_pinged_and_replaced_if_dropped(
    database_url: str, ping_after_idle: float
) -> None:
    """The alert store has no retry of its own: after a drop it reads on a live connection only when
    the rested one was pinged (here: rested at all, against rested an hour, which none did)."""
    proxy = TcpProxy(urlsplit(database_url).port or 5432, free_port())
    await proxy.up()
    engine = create_engine(through(database_url, proxy.port), ping_after_idle=ping_after_idle)
    alerts = AlertStore(engine)
    engagement = f"rested-{uuid.uuid4().hex[:8]}"
    try:
        await alerts.raise_alert(
            engagement_id=engagement,
            alert_key=f"{engagement}/1",
            at=datetime(2026, 1, 5, tzinfo=UTC),
            kind="test",
            message="m",
            details={},
        )
        await proxy.down()  # the database went away while the connection rested in the pool
        await proxy.up()
        if ping_after_idle:
            with pytest.raises(DBAPIError):
                await alerts.alerts(engagement)
        else:
            assert [row.alert_key for row in await alerts.alerts(engagement)] == [f"{engagement}/1"]
    finally:
        await engine.dispose()
        await proxy.down()
