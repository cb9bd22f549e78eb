"""The composition root of SendGrid's Event Webhook: settings -> adapters -> HTTP endpoint.

Run it with ``python webhook.py`` (SENDGRID_WEBHOOK_PUBLIC_KEY set, WEBHOOK_HOST/WEBHOOK_PORT) and
point SendGrid's Event Webhook at ``http(s)://<host>/sendgrid/events`` with signing enabled.
Ctrl-C (or SIGTERM) finishes the requests in flight and exits.

Answers: 200 once the usable events are recorded (a malformed event in the batch is rejected alone:
counted as ``rejected``, logged without its content, never stored, so SendGrid need not post it
again); 401 for a post without signature headers and 403 for a bad, tampered or stale one (nothing
recorded); 400 for a signed body that is not JSON, not an array or nested too deeply; 413 for a post
over 8 MiB; 503 when recording or telling the engagement failed, so that SendGrid posts again
(recording is idempotent, the follow-up resumes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.alerts import AlertStore
from adapters.db import create_engine
from adapters.http_endpoint import HEALTH, BodyTooLarge, read_body, run
from adapters.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryEventProcessor,
    DeliveryEventStore,
    SignatureRejected,
    SignatureVerifier,
    WorkflowSignalNotifier,
    parse_post,
)
from adapters.temporal_connection import connect
from settings import Settings
from worker import database_url

EVENTS_PATH = "/sendgrid/events"
MAX_BODY_BYTES = 8 * 1024 * 1024
"""SendGrid batches events into posts well under this; anything larger is not SendGrid."""

log = logging.getLogger("webhook")


def event_webhook_app(verifier: SignatureVerifier, processor: DeliveryEventProcessor) -> Starlette:
    async def receive_events(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return PlainTextResponse("payload too large", status_code=413)
        try:
            verifier.verify(body, request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER))
        except SignatureRejected as rejected:
            log.warning("refused an event post from %s: %s", request.client.host if request.client else "?", rejected)
            return PlainTextResponse(str(rejected), status_code=401 if rejected.unsigned else 403)
        try:
            post = parse_post(body)
        except ValueError as error:
            return PlainTextResponse(str(error), status_code=400)
        for rejection in post.rejected:  # ids and field names only: never a recipient or a reason
            log.warning("rejected %s of a signed post of %d", rejection, len(post.events) + len(post.rejected))
        try:
            report = await processor.process(post.events)
        except Exception:
            log.exception("recording %d events failed; SendGrid will post them again", len(post.events))
            return PlainTextResponse("events not recorded, post again", status_code=503)
        return JSONResponse(
            {
                "recorded": report.recorded,
                "duplicates": report.duplicates,
                "followed_up": report.followed_up,
                "rejected": len(post.rejected) + len(report.refused),
            }
        )

    return Starlette(routes=[Route(EVENTS_PATH, receive_events, methods=["POST"]), HEALTH])


@contextlib.asynccontextmanager
async def webhook_app(settings: Settings, url: str) -> AsyncIterator[Starlette]:
    """The endpoint with its adapters (database, Temporal client); everything is closed on exit."""
    verifier = SignatureVerifier(_public_key(settings), max_age=settings.webhook_max_age)
    # The worker owns the schema and migrates it at start; until it has, posts are answered 503 and
    # SendGrid posts them again. (Two processes migrating at once would race.)
    engine = create_engine(url)
    try:
        client = await connect(settings)
        processor = DeliveryEventProcessor(
            DeliveryEventStore(engine), AlertStore(engine), WorkflowSignalNotifier(client)
        )
        yield event_webhook_app(verifier, processor)
    finally:
        await engine.dispose()


def _public_key(settings: Settings) -> str:
    if not settings.sendgrid_webhook_public_key:
        raise SystemExit("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: refusing to accept unverifiable events")
    return settings.sendgrid_webhook_public_key


async def main() -> None:
    settings = Settings()
    _public_key(settings)  # before anything is started
    async with webhook_app(settings, database_url(settings)) as app:
        config = uvicorn.Config(app, host=settings.webhook_host, port=settings.webhook_port, log_config=None)
        log.info("SendGrid Event Webhook on http://%s:%d%s", settings.webhook_host, settings.webhook_port, EVENTS_PATH)
        await uvicorn.Server(config).serve()  # handles SIGINT/SIGTERM: drains requests, then returns


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(main())
