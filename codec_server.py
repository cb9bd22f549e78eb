"""The codec server: lets an authorised admin read the encrypted payloads of an engagement's history
in the Temporal UI or with the Temporal CLI, without the Temporal server ever holding the keys.

It speaks Temporal's codec server protocol: ``POST /encode`` and ``POST /decode`` (also under a
namespace segment, ``/{namespace}/decode``, for the CLI's endpoint templating), each taking and
returning ``{"payloads": [...]}`` in protobuf JSON. Every call needs ``Authorization: Bearer
<CODEC_AUTH_TOKEN>``, or, from a browser, a session: the admin signs in once at ``/login`` with the
token and gets an HttpOnly cookie (its expiry and an HMAC of it, never the token) that the Temporal
UI sends along when its codec settings include cross-origin credentials. Browsers may call it from
the origins in CODEC_CORS_ORIGINS only, and a session works only from those origins.

Answers: 200 with the payloads; 401 without a bearer token, 403 with a wrong one or from an origin
not allowed; 400 for a body that is not a payload list; 413 for a body over CODEC_MAX_BODY_BYTES;
422 for a payload that cannot be decrypted (unknown key id, altered ciphertext).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import html
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import uvicorn
from google.protobuf import json_format
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads

from adapters.codec import EncryptionCodec, Keyring, PayloadCodecError, PayloadKeyError, new_key
from adapters.http_endpoint import HEALTH, BodyTooLarge, in_background, read_body
from settings import Settings

log = logging.getLogger("codec_server")

BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
"""Standard or URL-safe base64, padded or not: what protobuf JSON writers emit."""
ALLOWED_HEADERS = "authorization,content-type,x-namespace"
"""What the Temporal UI sends: the token (when it passes one), JSON, and the namespace it shows."""


SESSION_COOKIE = "codec_session"
MAX_LOGIN_BYTES = 4096


class Sessions:
    """Browser sessions of admins who presented the bearer token once: a cookie value holding an
    expiry and its HMAC under a key derived from the token, so changing the token ends every session."""

    def __init__(self, token: str, lifetime: timedelta, clock: Callable[[], datetime]) -> None:
        self._key = hashlib.sha256(b"codec-session\0" + token.encode()).digest()
        self.lifetime = lifetime
        self._clock = clock

    def _mac(self, expires: str) -> str:
        return hmac.new(self._key, expires.encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        expires = str(int((self._clock() + self.lifetime).timestamp()))
        return f"{expires}.{self._mac(expires)}"

    def valid(self, value: str | None) -> bool:
        expires, _, mac = (value or "").partition(".")
        if not expires.isdigit() or len(expires) > 12 or not hmac.compare_digest(mac, self._mac(expires)):
            return False
        return int(expires) > self._clock().timestamp()


def _login_page(message: str, status: int = 200, cookie: str | None = None) -> HTMLResponse:
    body = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Codec server sign-in</title></head>'
        f"<body><main><h1>Codec server sign-in</h1><p>{html.escape(message)}</p>"
        '<form method="post" action="/login"><label>Codec token <input type="password" name="token" '
        'autocomplete="off" required></label> <button type="submit">Sign in</button></form></main></body></html>'
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'"}
    response = HTMLResponse(body, status_code=status, headers=headers)
    if cookie is not None:
        # SameSite=None: the UI is usually another site; Secure: browsers send it over TLS (and to loopback).
        response.headers["Set-Cookie"] = f"{SESSION_COOKIE}={cookie}; Path=/; HttpOnly; Secure; SameSite=None"
    return response


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_body(request, limit)
    except BodyTooLarge as too_large:
        raise _BadRequest(413, str(too_large)) from None


def _check_base64(value: object, where: str) -> None:
    # protobuf's JSON parser skips characters outside the base64 alphabet, so "***" would read as
    # empty bytes: refuse it here instead of decoding something the caller did not send.
    if not isinstance(value, str) or not BASE64.fullmatch(value):
        raise _BadRequest(400, f'expected {{"payloads": [...]}} in protobuf JSON: {where} is not base64')


def _parse_payloads(body: bytes) -> list[Payload]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _BadRequest(400, 'expected {"payloads": [...]} in protobuf JSON: the body is not JSON') from None
    if not isinstance(document, dict) or not isinstance(document.get("payloads", []), list):
        raise _BadRequest(400, 'expected {"payloads": [...]} in protobuf JSON')
    for n, item in enumerate(document.get("payloads", [])):
        if not isinstance(item, dict) or not isinstance(item.get("metadata", {}), dict):
            raise _BadRequest(400, f'expected {{"payloads": [...]}} in protobuf JSON: payload {n} is not an object')
        if "data" in item:
            _check_base64(item["data"], f"payload {n} data")
        for name, value in item.get("metadata", {}).items():
            _check_base64(value, f"payload {n} metadata {name!r}")
    try:
        message = json_format.ParseDict(document, Payloads())
    except (json_format.ParseError, ValueError) as error:
        first_line = str(error).splitlines()[0][:200]
        raise _BadRequest(400, f'expected {{"payloads": [...]}} in protobuf JSON: {first_line}') from None
    return list(message.payloads)


def codec_app(
    codec: EncryptionCodec,
    token: str,
    origins: Sequence[str],
    max_body_bytes: int,
    session_lifetime: timedelta = timedelta(hours=8),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The HTTP endpoints over one codec; ``token`` is the bearer token every call must present (or
    have presented at ``/login`` for a browser session of ``session_lifetime``)."""
    if not token:
        raise ValueError("the codec server needs a non-empty bearer token")
    allowed_origins = frozenset(origins)
    expected = f"Bearer {token}".encode()
    sessions = Sessions(token, session_lifetime, clock)

    def cors_headers(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None or origin not in allowed_origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    def error(request: Request, status: int, message: str) -> Response:
        headers = cors_headers(request)
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="codec"'
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def endpoint(apply: Callable[[Sequence[Payload]], Awaitable[list[Payload]]]) -> Callable[..., Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if request.method == "OPTIONS":  # a browser's preflight: it never carries the token
                headers = cors_headers(request)
                return Response(status_code=204 if headers else 403, headers=headers)
            origin = request.headers.get("origin")
            if origin is not None and origin not in allowed_origins:
                return error(request, 403, "origin not allowed")
            presented = request.headers.get("authorization")
            if not presented:
                # A browser session counts only from an allowed origin (never from a form on another site).
                if origin is None or not sessions.valid(request.cookies.get(SESSION_COOKIE)):
                    return error(request, 401, "a bearer token (or a session from /login) is required")
            elif not hmac.compare_digest(presented.encode(), expected):
                return error(request, 403, "wrong bearer token")
            try:
                payloads = _parse_payloads(await _read_body(request, max_body_bytes))
                result = await apply(payloads)
            except _BadRequest as bad:
                return error(request, bad.status, bad.message)
            except PayloadCodecError as undecodable:
                return error(request, 422, str(undecodable))
            body = json_format.MessageToJson(Payloads(payloads=result))
            return Response(body, media_type="application/json", headers=cors_headers(request))

        return handle

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return _login_page("Sign in with the codec token to read encrypted histories in the Temporal UI.")
        try:
            form = dict(parse_qsl((await _read_body(request, MAX_LOGIN_BYTES)).decode("utf-8", "replace")))
        except _BadRequest:
            return _login_page("The form is too large.", 413)
        if not hmac.compare_digest(form.get("token", "").encode(), token.encode()):
            log.warning("codec sign-in refused: wrong token")
            return _login_page("Wrong token.", 403)
        hours = sessions.lifetime.total_seconds() / 3600
        return _login_page(f"Signed in for {hours:g} hours: the Temporal UI can decode now.", cookie=sessions.issue())

    encode, decode = endpoint(codec.encode), endpoint(codec.decode)
    methods = ["POST", "OPTIONS"]
    return Starlette(
        routes=[
            Route("/encode", encode, methods=methods),
            Route("/decode", decode, methods=methods),
            Route("/{namespace}/encode", encode, methods=methods),
            Route("/{namespace}/decode", decode, methods=methods),
            HEALTH,
            Route("/login", login, methods=["GET", "POST"]),
        ]
    )


def app_from_settings(settings: Settings) -> Starlette:
    """The app as configured; SystemExit with a one-line reason when it must not start."""
    if settings.codec_auth_token is None or not settings.codec_auth_token.get_secret_value():
        raise SystemExit("CODEC_AUTH_TOKEN is not set: refusing to decrypt history for anyone who asks")
    try:
        keyring = Keyring.load(settings.payload_key_table(), settings.payload_keys_file, settings.payload_key_id)
    except PayloadKeyError as bad_keys:
        raise SystemExit(f"error: {bad_keys}") from None
    if keyring is None:
        raise SystemExit("PAYLOAD_KEYS (or PAYLOAD_KEYS_FILE) is not set: there is nothing to decrypt with")
    return codec_app(
        EncryptionCodec(keyring),
        settings.codec_auth_token.get_secret_value(),
        settings.codec_cors_origin_list(),
        settings.codec_max_body_bytes,
        settings.codec_session_lifetime,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="codec_server.py",
        description=(
            "Serve Temporal's codec server protocol (POST /encode, /decode) over the AES-GCM payload keys, "
            "so authorised admins can read encrypted engagement histories in the Temporal UI or CLI. "
            "Configured from the environment (or .env): PAYLOAD_KEYS or PAYLOAD_KEYS_FILE, PAYLOAD_KEY_ID, "
            "CODEC_AUTH_TOKEN (required), CODEC_CORS_ORIGINS, CODEC_HOST, CODEC_PORT, CODEC_MAX_BODY_BYTES."
        ),
    )
    parser.add_argument("--host", help="interface to listen on (default: CODEC_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: CODEC_PORT, 8081)")
    parser.add_argument(
        "--new-key", action="store_true", help="print a fresh base64 AES-256 key for PAYLOAD_KEYS and exit"
    )
    return parser.parse_args(argv)


def _server(settings: Settings, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(app_from_settings(settings), host=host, port=port, log_config=None, access_log=False)
    log.info("codec server on http://%s:%d (origins: %s)", host, port, ", ".join(settings.codec_cors_origin_list()))
    return uvicorn.Server(config)


async def serve(settings: Settings, host: str, port: int) -> None:
    await _server(settings, host, port).serve()  # handles SIGINT/SIGTERM: drains requests, then returns


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[None]:
    """The codec server in the background for the block (the demo's way)."""
    async with in_background(_server(settings, settings.codec_host, settings.codec_port)):
        yield


def local_encryption(settings: Settings, path: Path) -> Settings:
    """Settings that encrypt every payload with a key kept in ``path`` (made once, readable by its owner
    only), and a codec token from the same file: for a machine whose operator set no keys (the demo)."""
    if not path.exists():
        made = {"payload_key": new_key(), "codec_token": secrets.token_urlsafe(32)}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(made, file)
    kept = json.loads(path.read_text(encoding="utf-8"))
    return settings.model_copy(
        update={
            "payload_keys": {"local": SecretStr(kept["payload_key"])},
            "payload_key_id": "local",
            "codec_auth_token": settings.codec_auth_token or SecretStr(kept["codec_token"]),
        }
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.new_key:
        print(new_key())
        return
    settings = Settings()
    app_from_settings(settings)  # refuse before anything listens
    asyncio.run(serve(settings, args.host or settings.codec_host, args.port or settings.codec_port))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
