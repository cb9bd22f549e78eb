"""SendGrid's Event Webhook over real HTTP: the webhook app on loopback (uvicorn), posts signed with an
ECDSA P-256 key generated here, PostgreSQL behind it, and Temporal's test server for the signal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import func, select
from temporalio import workflow
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.email import EmailActivities, EmailRequest
from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.db_schema import email_events
from adapters.email import SendGridSender
from adapters.outbox import OutboxStore
from adapters.sendgrid_events import (
    DeliveryEvent,
    DeliveryEventProcessor,
    DeliveryEventStore,
    SignatureVerifier,
    WorkflowSignalNotifier,
)
from domain.email_kinds import EmailKind, Recipient, message_key
from domain.spec import parse_spec
from domain.state import DeliveryProblem
from emails.samples import sample_facts
from tests.sample_spec import spec_data
from tests.sendgrid_peer import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventWebhookSigner,
    PeerRequest,
    SendGridPeer,
    delivery_event,
)
from webhook import EVENTS_PATH, event_webhook_app

SIGNATORY = Recipient(name="Sam Signer", email="sam@acme.example")


# ---------------------------------------------------------------- a workflow that only listens


@workflow.defn(name="DeliveryProblemListener")
class DeliveryProblemListener:
    """Stands in for the engagement: completes with the first delivery problem it is told about."""

    def __init__(self) -> None:
        self._problems: list[DeliveryProblem] = []

    @workflow.run
    async def run(self) -> list[DeliveryProblem]:
        await workflow.wait_condition(lambda: bool(self._problems))
        return self._problems

    @workflow.signal(name="email_delivery_problem")
    def email_delivery_problem(self, problem: DeliveryProblem) -> None:
        self._problems.append(problem)


# ---------------------------------------------------------------- the webhook on loopback


@dataclass
class RunningWebhook:
    url: str
    signer: EventWebhookSigner
    http: httpx.AsyncClient
    store: EngagementStore

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.post(
            self.url, content=body, headers=self.signer.headers(body) if headers is None else headers
        )

    async def post_events(self, *events: dict[str, Any]) -> httpx.Response:
        return await self.post(json.dumps(list(events)).encode())

    async def recorded(self, message_key: str) -> list[Any]:
        return await DeliveryEventStore(self.store.engine).events(message_key)

    async def state(self, key: str) -> str:
        return str((await OutboxStore(self.store.engine).message(key)).state)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        port = int(listening.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
        task = asyncio.create_task(server.serve(sockets=[listening]))
        while not server.started:  # startup is quick; give up if serving failed
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


@pytest_asyncio.fixture
async def webhook(store: EngagementStore, env: WorkflowEnvironment) -> AsyncIterator[RunningWebhook]:
    signer = EventWebhookSigner()
    processor = DeliveryEventProcessor(
        DeliveryEventStore(store.engine), AlertStore(store.engine), WorkflowSignalNotifier(env.client)
    )
    app = event_webhook_app(SignatureVerifier(signer.public_key, max_age=timedelta(minutes=5)), processor)
    async with serving(app) as base, httpx.AsyncClient(timeout=10) as http:
        yield RunningWebhook(url=base + EVENTS_PATH, signer=signer, http=http, store=store)


async def send_one(
    store: EngagementStore, peer: SendGridPeer, engagement_id: str | None = None
) -> tuple[str, PeerRequest]:
    """Send one real message through the activity and SendGrid peer; its key and what SendGrid saw."""
    request = EmailRequest(
        engagement_id=engagement_id or f"engagement-{uuid.uuid4().hex}",
        kind=EmailKind.NDA_REQUEST,
        step="nda_request",
        occurrence=1,
        recipients=[SIGNATORY],
        facts=sample_facts(EmailKind.NDA_REQUEST, parse_spec(spec_data())),
    )
    sender = SendGridSender(peer.api_key, "eo@firm.example", "EO", host=peer.host, timeout_seconds=5)
    await ActivityEnvironment().run(EmailActivities(OutboxStore(store.engine), sender).send_email, request)
    accepted = peer.received[-1]
    key = message_key(request.engagement_id, request.step, SIGNATORY.email, request.occurrence)
    assert accepted.payload["custom_args"]["message_key"] == key
    return key, accepted


async def count_events(store: EngagementStore) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(email_events))).scalar_one())


# ---------------------------------------------------------------- verification


async def test_signed_events_are_recorded_and_move_the_message_on(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer
) -> None:
    key, accepted = await send_one(store, peer)
    assert await webhook.state(key) == "sent"

    response = await webhook.post_events(delivery_event(accepted, "processed"), delivery_event(accepted, "delivered"))

    assert response.status_code == 200
    assert response.json() == {"recorded": 2, "duplicates": 0, "followed_up": 0, "rejected": 0}
    assert [e.event for e in await webhook.recorded(key)] == ["processed", "delivered"]
    row = await OutboxStore(store.engine).message(key)
    assert row.state == "delivered" and row.last_event == "delivered"
    assert [e.sg_message_id.startswith(accepted.message_id) for e in await webhook.recorded(key)] == [True, True]


def tampered_posts(signer: EventWebhookSigner, body: bytes) -> dict[str, tuple[bytes, dict[str, str], int]]:
    """Posts that are not provably SendGrid's, each with the status it must get."""
    now = int(datetime.now(UTC).timestamp())
    signed = signer.headers(body)
    changed = body.replace(b'"delivered"', b'"deferred"')
    assert changed != body
    return {
        "no signature headers": (body, {"Content-Type": "application/json"}, 401),
        "no timestamp header": (body, {k: v for k, v in signed.items() if k != TIMESTAMP_HEADER}, 401),
        "body changed after signing": (changed, signed, 403),
        "signed by another key": (body, EventWebhookSigner().headers(body), 403),
        "timestamp changed after signing": (body, {**signed, TIMESTAMP_HEADER: str(now + 1)}, 403),
        "stale timestamp (a replay)": (body, signer.headers(body, timestamp=now - 3600), 403),
        "signature not base64": (body, {**signed, SIGNATURE_HEADER: "not base64!"}, 403),
    }


async def test_posts_that_are_not_provably_sendgrids_are_refused_and_change_nothing(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer
) -> None:
    key, accepted = await send_one(store, peer)
    body = json.dumps([delivery_event(accepted, "delivered")]).encode()
    before = await count_events(store)

    for case, (sent, headers, status) in tampered_posts(webhook.signer, body).items():
        response = await webhook.post(sent, headers)
        assert response.status_code == status, case

    assert await count_events(store) == before
    assert await webhook.recorded(key) == []
    assert await webhook.state(key) == "sent"
    assert (await webhook.post(body)).status_code == 200  # the genuine post is accepted
    assert await webhook.state(key) == "delivered"


async def test_a_signed_body_that_is_not_an_event_array_is_a_bad_request(webhook: RunningWebhook) -> None:
    assert (await webhook.post(b'{"event": "delivered"}')).status_code == 400
    assert (await webhook.post(b"not json")).status_code == 400
    response = await webhook.post_events({"event": "delivered"}, {"sg_event_id": "x"})  # no sg_event_id / event
    assert response.status_code == 200 and response.json()["rejected"] == 2


# ---------------------------------------------------------------- one bad event never holds back the others


def malformed_events(accepted: PeerRequest) -> dict[str, bytes]:
    """Events of a real message, each broken in one way, as JSON text (some are not expressible in Python)."""
    nul = delivery_event(accepted, "deferred")
    nul["response"] = "400 try\x00again"
    nul_extra = delivery_event(accepted, "open")
    nul_extra["useragent"] = "Mozilla\x00"
    cases: dict[str, Any] = {
        "a timestamp of 1e20": delivery_event(accepted, "processed", timestamp=10**20),
        "a timestamp in 1970": delivery_event(accepted, "processed", timestamp=1),
        "a timestamp that is a boolean": delivery_event(accepted, "processed") | {"timestamp": True},
        "NUL in the response": nul,
        "NUL in an extra field": nul_extra,
        "a message key longer than ours": delivery_event(accepted, "processed", message_key="k" * 65),
        "a recipient longer than an address": delivery_event(accepted, "processed", email="a" * 400),
        "an sg_event_id of 10 KB": delivery_event(accepted, "processed", sg_event_id="e" * 10_000),
        "an event name with a line break": delivery_event(accepted, "processed") | {"event": "deli\nvered"},
        "a deeply nested extra field": delivery_event(accepted, "open") | {"pool": _nested(20)},
        "not an object": [1, 2],
    }
    raw = {case: json.dumps(event).encode() for case, event in cases.items()}
    surrogate = delivery_event(accepted, "open")
    raw["a lone surrogate"] = json.dumps(surrogate).encode().replace(b'"event": "open"', b'"event": "open\\ud800"')
    raw["a timestamp of 1e999"] = (
        json.dumps(delivery_event(accepted, "open")).encode().replace(b'"timestamp": ', b'"timestamp": 1e999, "x": ')
    )
    return raw


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"inner": value}
    return value


async def test_a_malformed_event_is_rejected_alone_and_the_rest_of_the_batch_is_recorded(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer, caplog: pytest.LogCaptureFixture
) -> None:
    key, accepted = await send_one(store, peer)
    bad = malformed_events(accepted)
    bad_ids = [json.loads(raw)["sg_event_id"] if raw.startswith(b"{") else None for raw in bad.values()]
    good = [delivery_event(accepted, "processed"), delivery_event(accepted, "delivered")]
    body = b"[" + b", ".join([json.dumps(good[0]).encode(), *bad.values(), json.dumps(good[1]).encode()]) + b"]"

    with caplog.at_level("WARNING", logger="webhook"):
        response = await webhook.post(body)

    assert response.status_code == 200, response.text
    assert response.json() == {"recorded": 2, "duplicates": 0, "followed_up": 0, "rejected": len(bad)}
    assert [e.sg_event_id for e in await webhook.recorded(key)] == [g["sg_event_id"] for g in good]
    assert await webhook.state(key) == "delivered"
    rejections = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected entry")]
    assert len(rejections) == len(bad)
    assert rejections[0].startswith(f"rejected entry 1 (sg_event_id {bad_ids[0]}): timestamp: Input should be less")
    assert f"entry {1 + list(bad).index('NUL in an extra field')} " in "\n".join(rejections)
    assert "entry: Value error, not storable: a text holds NUL or a lone surrogate" in "\n".join(rejections)
    personal = [SIGNATORY.email, "again", "Mozilla", "aaaaaaaa", "deli"]
    leaks = [line for line in rejections if any(p in line for p in personal)]
    assert not leaks, "\n".join(leaks)

    again = await webhook.post(body)  # SendGrid's retry of the same batch: the same answer, nothing twice
    assert again.status_code == 200
    assert again.json() == {"recorded": 0, "duplicates": 2, "followed_up": 0, "rejected": len(bad)}


async def test_a_bounce_beside_a_malformed_event_still_reaches_the_engagement(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer
) -> None:
    key, accepted = await send_one(store, peer)
    broken = delivery_event(accepted, "processed", timestamp=10**20)
    bounce = delivery_event(accepted, "bounce", reason="550 5.1.1 user unknown\r\n\tsee\x07 RFC")

    response = await webhook.post_events(broken, bounce)

    assert response.status_code == 200
    assert response.json() | {"followed_up": 1} == {"recorded": 1, "duplicates": 0, "followed_up": 1, "rejected": 1}
    assert await webhook.state(key) == "bounced"
    [event] = await webhook.recorded(key)
    assert event.reason == "550 5.1.1 user unknown\n see  RFC"  # control characters read as spaces


async def test_a_body_that_is_not_a_json_array_of_shallow_events_is_a_bad_request(
    webhook: RunningWebhook, store: EngagementStore
) -> None:
    before = await count_events(store)
    for body in (
        b"[" * 100_000 + b"]" * 100_000,  # Python's parser gives up on it: still a 400, not a 500
        json.dumps([_nested(80)]).encode(),
        b'{"event": "delivered"}',
        b"\xff\xfe[]",
        b'[{"event": "open", "sg_event_id": "x", "timestamp": NaN}]',  # NaN is not JSON
        b"[" + b"9" * 5000 + b"]",
        b"",
    ):
        response = await webhook.post(body)
        assert response.status_code == 400, (body[:20], response.status_code, response.text)
    assert await count_events(store) == before


async def test_a_post_over_the_size_limit_is_refused_before_it_is_read(webhook: RunningWebhook) -> None:
    from webhook import MAX_BODY_BYTES

    body = b"[" + b" " * MAX_BODY_BYTES + b"]"
    assert (await webhook.post(body)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams in
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    response = await webhook.http.post(webhook.url, content=chunks(), headers=webhook.signer.headers(b"[]"))
    assert response.status_code == 413


async def test_an_event_the_database_still_refuses_is_rolled_back_alone(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    """Defence in depth behind the parsing: a value PostgreSQL cannot hold costs one event, not the post."""
    key, accepted = await send_one(store, peer)
    events = DeliveryEventStore(store.engine)
    good = DeliveryEvent.model_validate(delivery_event(accepted, "delivered"))
    unstorable = DeliveryEvent.model_construct(**(good.model_dump() | {"sg_event_id": "x", "reason": "NUL\x00"}))

    report = await events.record([unstorable, good])

    assert report.refused == ["x"] and report.recorded == 1 and report.duplicates == 0
    assert [e.sg_event_id for e in await events.events(key)] == [good.sg_event_id]
    assert (await OutboxStore(store.engine).message(key)).state == "delivered"


# ---------------------------------------------------------------- recording


async def test_a_duplicate_event_is_recorded_once(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer
) -> None:
    key, accepted = await send_one(store, peer)
    delivered = delivery_event(accepted, "delivered")

    first = await webhook.post_events(delivered, delivered)
    again = await webhook.post_events(delivered)

    assert first.json()["recorded"] == 1 and first.json()["duplicates"] == 1
    assert again.json()["recorded"] == 0 and again.json()["duplicates"] == 1
    assert [e.sg_event_id for e in await webhook.recorded(key)] == [delivered["sg_event_id"]]


async def test_events_out_of_order_never_move_a_message_back(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer
) -> None:
    key, accepted = await send_one(store, peer)
    t = int(datetime.now(UTC).timestamp())

    await webhook.post_events(delivery_event(accepted, "delivered", timestamp=t))
    await webhook.post_events(
        delivery_event(accepted, "deferred", timestamp=t - 20), delivery_event(accepted, "processed", timestamp=t - 30)
    )
    assert await webhook.state(key) == "delivered"

    await webhook.post_events(delivery_event(accepted, "open", timestamp=t + 60))
    assert await webhook.state(key) == "delivered"
    await webhook.post_events(delivery_event(accepted, "dropped", reason="Bounced Address", timestamp=t + 90))
    assert await webhook.state(key) == "dropped"
    await webhook.post_events(delivery_event(accepted, "delivered", timestamp=t + 120))
    assert await webhook.state(key) == "dropped"
    assert len(await webhook.recorded(key)) == 6  # every event is kept, whatever it did to the state


async def test_events_of_mail_this_system_did_not_send_are_kept_apart(webhook: RunningWebhook) -> None:
    now = int(datetime.now(UTC).timestamp())
    stranger = {"email": "x@example.com", "timestamp": now, "event": "bounce", "sg_event_id": uuid.uuid4().hex}
    response = await webhook.post_events(stranger)
    assert response.status_code == 200 and response.json()["recorded"] == 1


# ---------------------------------------------------------------- problems reach the engagement


async def test_a_bounce_alerts_and_signals_the_engagement_once(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer, env: WorkflowEnvironment
) -> None:
    task_queue = f"listen-{uuid.uuid4().hex[:8]}"
    engagement_id = f"engagement-{uuid.uuid4().hex[:12]}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[DeliveryProblemListener],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await env.client.start_workflow(DeliveryProblemListener.run, id=engagement_id, task_queue=task_queue)
        key, accepted = await send_one(store, peer, engagement_id)
        bounce = delivery_event(accepted, "bounce", reason="550 5.1.1 user unknown")

        response = await webhook.post_events(delivery_event(accepted, "processed"), bounce)
        assert response.status_code == 200 and response.json()["followed_up"] == 1
        [problem] = await handle.result()

    assert problem == DeliveryProblem(
        message_key=key,
        kind="nda_request",
        recipient=SIGNATORY.email,
        event="bounce",
        reason="550 5.1.1 user unknown",
        at=datetime.fromtimestamp(bounce["timestamp"], UTC),
    )
    assert await webhook.state(key) == "bounced"
    [alert] = await AlertStore(store.engine).alerts(engagement_id)
    assert alert.kind == "email_delivery_problem" and "550 5.1.1 user unknown" in alert.message
    assert [e.follow_up for e in await webhook.recorded(key) if e.event == "bounce"] == ["signalled"]

    # SendGrid posts the same bounce again: recorded once, followed up once.
    again = await webhook.post_events(bounce)
    assert again.json() == {"recorded": 0, "duplicates": 1, "followed_up": 0, "rejected": 0}
    assert len(await AlertStore(store.engine).alerts(engagement_id)) == 1


async def test_a_problem_for_an_engagement_without_a_workflow_does_not_fail_the_post(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer
) -> None:
    key, accepted = await send_one(store, peer)  # no workflow of that id runs anywhere

    response = await webhook.post_events(delivery_event(accepted, "bounce", type="blocked", reason="blocked by ISP"))

    assert response.status_code == 200
    assert await webhook.state(key) == "blocked"
    [event] = await webhook.recorded(key)
    assert event.follow_up == "workflow not found" and event.bounce_type == "blocked"
    engagement_id = (await OutboxStore(store.engine).message(key)).engagement_id
    [alert] = await AlertStore(store.engine).alerts(engagement_id)
    assert alert.details["event"] == "blocked"


class Unreachable:
    """A Temporal frontend that cannot be reached right now."""

    async def notify(self, engagement_id: str, problem: DeliveryProblem) -> str:
        raise ConnectionError("temporal unreachable")


async def test_when_the_engagement_cannot_be_told_sendgrid_is_asked_to_post_again(
    store: EngagementStore, peer: SendGridPeer, env: WorkflowEnvironment
) -> None:
    signer = EventWebhookSigner()
    verifier = SignatureVerifier(signer.public_key)
    events, alerts = DeliveryEventStore(store.engine), AlertStore(store.engine)
    key, accepted = await send_one(store, peer)
    body = json.dumps([delivery_event(accepted, "dropped", reason="Invalid")]).encode()

    failing = event_webhook_app(verifier, DeliveryEventProcessor(events, alerts, Unreachable()))
    async with serving(failing) as base, httpx.AsyncClient() as http:
        response = await http.post(base + EVENTS_PATH, content=body, headers=signer.headers(body))
    assert response.status_code == 503
    [event] = await events.events(key)
    assert event.follow_up is None

    working = event_webhook_app(verifier, DeliveryEventProcessor(events, alerts, WorkflowSignalNotifier(env.client)))
    async with serving(working) as base, httpx.AsyncClient() as http:
        response = await http.post(base + EVENTS_PATH, content=body, headers=signer.headers(body))
    assert response.status_code == 200
    assert response.json()["duplicates"] == 1 and response.json()["followed_up"] == 1
    [event] = await events.events(key)
    assert event.follow_up == "workflow not found"


# ---------------------------------------------------------------- exactly once, end to end


async def test_a_worker_that_died_after_sending_is_settled_by_the_webhook(
    webhook: RunningWebhook, store: EngagementStore, peer: SendGridPeer
) -> None:
    # The same dying worker as in test_email_exactly_once.py; here the event comes over HTTP.
    from tests.test_email_exactly_once import Clock, DiesAfterHandingOver, WorkerDies, must_wait, request_to

    clock = Clock()
    request = request_to(SIGNATORY)
    sender = SendGridSender(peer.api_key, "eo@firm.example", "EO", host=peer.host, timeout_seconds=5)
    dying = EmailActivities(OutboxStore(store.engine), DiesAfterHandingOver(sender), clock=clock)
    with pytest.raises(WorkerDies):
        await ActivityEnvironment().run(dying.send_email, request)
    retry = EmailActivities(OutboxStore(store.engine), sender, clock=clock)
    await must_wait(retry, request)

    [accepted] = peer.received
    assert (await webhook.post_events(delivery_event(accepted, "processed"))).status_code == 200
    outcome = await ActivityEnvironment().run(retry.send_email, request)

    assert outcome.sent == [SIGNATORY.email]
    assert len(peer.received) == 1
    key = message_key(request.engagement_id, request.step, SIGNATORY.email, request.occurrence)
    assert await webhook.state(key) == "processed"


def test_the_verification_key_must_be_an_ecdsa_p256_public_key() -> None:
    with pytest.raises(ValueError, match="base64 DER"):
        SignatureVerifier("not a key")
    signer = EventWebhookSigner()
    pem = "-----BEGIN PUBLIC KEY-----\n" + signer.public_key + "\n-----END PUBLIC KEY-----\n"
    SignatureVerifier(pem).verify(b"[]", *_signature_of(signer, b"[]"))


def _signature_of(signer: EventWebhookSigner, body: bytes) -> tuple[str, str]:
    headers = signer.headers(body)
    return headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
