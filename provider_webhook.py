"""The screening provider's webhook: settings -> adapters -> HTTP endpoint.

Run it with ``python provider_webhook.py`` (CHECKR_API_KEY set; PROVIDER_WEBHOOK_HOST/PORT) and give
Checkr ``https://<host>/checkr/webhooks`` as the webhook URL. Ctrl-C finishes requests in flight.

Answers: 401 without ``X-Checkr-Signature`` and 403 with a wrong one (HMAC-SHA256 of the raw body
keyed with the API key, compared in constant time; nothing is read from the body before); 413 over
1 MiB; 400 for a body that is not a JSON object or nests too deeply; 200 for an event handled, a
duplicate (by event id: Checkr's signature has no timestamp, so a replay is caught here) or an
unusable event (ignored alone, logged without its content); 503 when the provider, the database or
Temporal failed, so that Checkr sends it again. The check's workflow polls as well: a webhook URL
that Checkr disables after failures delays a result, it does not lose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adapters.checkr import SIGNATURE_HEADER, CheckrProvider, signature_valid
from adapters.checkr_webhook import (
    MalformedBody,
    ProviderEventProcessor,
    UnusableEvent,
    WorkflowSignalNotifier,
    parse_event,
)
from adapters.db import create_engine
from adapters.http_endpoint import HEALTH, BodyTooLarge, read_body, run
from adapters.screening_store import ScreeningStore
from adapters.temporal_connection import connect
from settings import Settings
from worker import database_url

EVENTS_PATH = "/checkr/webhooks"
MAX_BODY_BYTES = 1024 * 1024
HANDLE_WITHIN_SECONDS = 8.0
"""Answer before the provider's own timeout; an event not handled by then is answered 503 and resent."""

log = logging.getLogger("provider_webhook")


def provider_webhook_app(api_key: str, processor: ProviderEventProcessor) -> Starlette:
    async def receive(request: Request) -> Response:
        peer = request.client.host if request.client else "?"
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return PlainTextResponse("payload too large", status_code=413)
        sent = request.headers.get(SIGNATURE_HEADER)
        if not sent:
            log.warning("refused an unsigned post from %s", peer)
            return PlainTextResponse("signature required", status_code=401)
        if not signature_valid(api_key, body, sent):
            log.warning("refused a post with a wrong signature from %s", peer)
            return PlainTextResponse("bad signature", status_code=403)
        try:
            event = parse_event(body)
        except MalformedBody as error:
            return PlainTextResponse(str(error), status_code=400)
        except UnusableEvent as error:
            log.warning("ignored a signed event: %s", error)  # ids and field names only
            return JSONResponse({"ignored": str(error)})
        try:
            handled = await asyncio.wait_for(processor.handle(event), HANDLE_WITHIN_SECONDS)
        except Exception as error:  # any failure: the event stays unhandled and is resent
            log.error(
                "event %s (%s) not handled, the provider will send it again: %r", event.event_id, event.type, error
            )
            return PlainTextResponse("not handled, send again", status_code=503)
        log.info("event %s (%s): %s", event.event_id, event.type, handled.outcome)
        return JSONResponse({"event": event.event_id, "outcome": handled.outcome})

    return Starlette(routes=[Route(EVENTS_PATH, receive, methods=["POST"]), HEALTH])


def _api_key(settings: Settings) -> str:
    if settings.checkr_api_key is None:
        raise SystemExit("CHECKR_API_KEY is not set: refusing to accept unverifiable provider events")
    return settings.checkr_api_key.get_secret_value()


@contextlib.asynccontextmanager
async def provider_webhook(settings: Settings, url: str) -> AsyncIterator[Starlette]:
    """The endpoint with its adapters (provider, database, Temporal client); all closed on exit."""
    key = _api_key(settings)
    engine = create_engine(url)
    provider = CheckrProvider(settings.checkr_base_url, key, settings.checkr_timeout_seconds)
    try:
        client = await connect(settings)
        processor = ProviderEventProcessor(provider, ScreeningStore(engine), WorkflowSignalNotifier(client))
        yield provider_webhook_app(key, processor)
    finally:
        await provider.close()
        await engine.dispose()


async def main() -> None:
    settings = Settings()
    _api_key(settings)
    async with provider_webhook(settings, database_url(settings)) as app:
        host, port = settings.provider_webhook_host, settings.provider_webhook_port
        config = uvicorn.Config(app, host=host, port=port, log_config=None)
        log.info("screening provider webhook on http://%s:%d%s", host, port, EVENTS_PATH)
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(main())
