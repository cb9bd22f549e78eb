"""A loopback stand-in for SendGrid's v3 Mail Send endpoint, for tests of the real ``sendgrid`` client.

It implements the documented contract of ``POST /v3/mail/send``:

* ``Authorization: Bearer <api key>`` is required; otherwise ``401``.
* The JSON payload is validated (personalizations with recipients, ``from.email``, a subject,
  content blocks with ``text/plain`` before ``text/html``, string ``custom_args``); otherwise ``400``
  naming the offending ``field``. A body over the size limit answers ``413``.
* Errors use SendGrid's shape: ``{"errors": [{"message": ..., "field": ..., "help": ...}]}``.
* Success is ``202 Accepted`` with an empty body and a unique ``X-Message-Id`` header.

With ``template_id`` (a dynamic template, ``d-`` and 32 hex digits) the content and the subject may
be left out, and ``personalizations[].dynamic_template_data`` must be an object. Attachments need
base64 ``content`` and a ``filename``; ``disposition`` is ``attachment`` or ``inline`` (with a
``content_id``).

Tests can script the next responses: a failure with any status (``fail_next``), a ``429`` with the
``X-RateLimit-*`` headers (``rate_limit_next``), a slow answer (``delay_next``), or no answer until
the test lets it go (``hold_next``: an outage that keeps a send in flight; ``held``, ``release``). Scripted
behaviours are consumed first-in, first-out, one per mail-send request. ``refuse_address`` answers every
send to one address with a failure, whatever order the sends of one email arrive in.

The Event Webhook side: ``delivery_event`` shapes the events SendGrid posts about an accepted
message (its custom args at the top level), and ``EventWebhookSigner`` signs a post the way the
Signed Event Webhook does (ECDSA P-256 over timestamp + body).

This is a test peer, not production code: it binds 127.0.0.1 on a free port and serves from a
background thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAIL_SEND_PATH = "/v3/mail/send"
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
"""SendGrid documents a 20 MB limit on the whole message."""

_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_DYNAMIC_TEMPLATE_ID = re.compile(r"^d-[0-9a-f]{32}$")

_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    404: "resource not found",
    405: "method not allowed",
    413: "payload too large",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def error_body(message: str, field: str | None = None, help: str | None = None) -> bytes:
    """SendGrid's error shape with a single error entry."""
    return json.dumps({"errors": [{"message": message, "field": field, "help": help}]}).encode()


@dataclass(frozen=True)
class PeerRequest:
    """One request the peer answered (or was answering when the client gave up)."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    payload: Any
    """The body parsed as JSON, or None when it was not valid JSON."""
    status: int
    message_id: str | None = None
    """The X-Message-Id answered with a 202."""

    @property
    def accepted(self) -> bool:
        return self.status == 202


@dataclass(frozen=True)
class _Failure:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _RateLimit:
    reset_in_seconds: float
    limit: int


@dataclass(frozen=True)
class _Delay:
    seconds: float


@dataclass(frozen=True)
class _Hold:
    status: int
    """The answer once released."""


_Scripted = _Failure | _RateLimit | _Delay | _Hold


def _error_data(status: int, body: bytes | str | dict[str, Any] | None) -> bytes:
    if body is None:
        return error_body(_DEFAULT_MESSAGES.get(status, "error"))
    if isinstance(body, dict):
        return json.dumps(body).encode()
    return body.encode() if isinstance(body, str) else body


def _first_recipient(payload: Any) -> str:
    """The first "to" address of a mail send, lower case ("" when the payload has none)."""
    try:
        return str(payload["personalizations"][0]["to"][0]["email"]).lower()
    except (KeyError, IndexError, TypeError):
        return ""


class ValidationError(Exception):
    def __init__(self, message: str, field: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
"""Headers SendGrid's v3 mail send refuses to let a sender set."""


def _unquoted_delimiter(name: str) -> bool:
    """A ``,`` or ``;`` outside an RFC 5322 quoted-string (SendGrid pastes the name into the header)."""
    quoted = escaped = False
    for char in name:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in ",;" and not quoted:
            return True
    return False


def validate_mail(payload: Any) -> None:
    """Raise ValidationError for the first problem SendGrid would report in a v3 mail send body."""
    if not isinstance(payload, dict):
        raise ValidationError("Bad Request", None)
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise ValidationError(
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
        )
    template_id = payload.get("template_id")
    if template_id is not None and (not isinstance(template_id, str) or not _DYNAMIC_TEMPLATE_ID.match(template_id)):
        raise ValidationError(f"The template_id must be a valid GUID, you provided '{template_id}'.", "template_id")
    top_subject = payload.get("subject")
    has_top_subject = (isinstance(top_subject, str) and top_subject != "") or template_id is not None
    for i, personalization in enumerate(personalizations):
        if not isinstance(personalization, dict):
            raise ValidationError("Invalid type. Expected: object.", f"personalizations.{i}")
        to = personalization.get("to")
        if not isinstance(to, list) or not to:
            raise ValidationError(
                "The to array is required for all personalization objects, and must have at least one "
                "email object with a valid email address.",
                f"personalizations.{i}.to",
            )
        for j, address in enumerate(to):
            email = address.get("email") if isinstance(address, dict) else None
            if not isinstance(email, str) or not _EMAIL.match(email):
                raise ValidationError("Does not contain a valid address.", f"personalizations.{i}.to.{j}.email")
            name = address.get("name") if isinstance(address, dict) else None
            if isinstance(name, str) and _unquoted_delimiter(name):
                # SendGrid documents it: to.name cannot hold "," or ";" (it would split the header there).
                raise ValidationError("The to name cannot contain ',' or ';'.", f"personalizations.{i}.to.{j}.name")
        data = personalization.get("dynamic_template_data")
        if data is not None and not isinstance(data, dict):
            raise ValidationError(
                f"Invalid type. Expected: object, given: {type(data).__name__}.",
                f"personalizations.{i}.dynamic_template_data",
            )
        subject = personalization.get("subject")
        if not has_top_subject and not (isinstance(subject, str) and subject):
            raise ValidationError(
                "The subject is required. You can get around this requirement if you use a template with a "
                "subject defined or if every personalization has a subject defined.",
                "subject",
            )
    headers = payload.get("headers")
    if headers is not None:
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ValidationError("Invalid type. Expected: object of strings.", "headers")
        for name in headers:
            if name.lower() in RESERVED_HEADERS:
                raise ValidationError(f"The header {name} is reserved and cannot be set.", "headers")
    sender = payload.get("from")
    if not isinstance(sender, dict):
        raise ValidationError(
            "The from object must be provided for every email send. It is an object that requires the email "
            "parameter, but may also contain a name parameter.",
            "from",
        )
    if not isinstance(sender.get("email"), str) or not _EMAIL.match(sender["email"]):
        raise ValidationError("The from email does not contain a valid address.", "from.email")
    content = payload.get("content")
    if template_id is not None and content is None:
        content = []
    elif not isinstance(content, list) or not content:
        raise ValidationError(
            "Unless a valid template_id is provided, the content parameter is required. There must be at least "
            "one defined content block.",
            "content",
        )
    types: list[str] = []
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            raise ValidationError("Invalid type. Expected: object.", f"content.{i}")
        kind = block.get("type")
        if not isinstance(kind, str) or not kind or ";" in kind or "\r" in kind or "\n" in kind:
            raise ValidationError(
                "The content type cannot contain ';', or CRLF characters, and must be at least one character.",
                f"content.{i}.type",
            )
        value = block.get("value")
        if not isinstance(value, str) or not value:
            raise ValidationError(
                "The content value must be a string at least one character in length.", f"content.{i}.value"
            )
        types.append(kind)
    if "text/plain" in types and types[0] != "text/plain":
        raise ValidationError(
            "If present, text/plain must be first, followed by text/html, followed by any other content.",
            "content",
        )
    _validate_attachments(payload.get("attachments"))
    custom_args = payload.get("custom_args")
    if custom_args is not None and (
        not isinstance(custom_args, dict) or not all(isinstance(v, str) for v in custom_args.values())
    ):
        raise ValidationError("Invalid type. Expected: string, given: integer.", "custom_args")
    categories = payload.get("categories")
    if categories is not None and (
        not isinstance(categories, list) or len(categories) > 10 or not all(isinstance(c, str) for c in categories)
    ):
        raise ValidationError("Categories must be a list of at most 10 strings.", "categories")


def _validate_attachments(attachments: Any) -> None:
    if attachments is None:
        return
    if not isinstance(attachments, list):
        raise ValidationError("Invalid type. Expected: array.", "attachments")
    for i, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            raise ValidationError("Invalid type. Expected: object.", f"attachments.{i}")
        content = attachment.get("content")
        if not isinstance(content, str) or not content:
            raise ValidationError("The attachment content is required.", f"attachments.{i}.content")
        try:
            base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(
                "The attachment content must be base64 encoded.", f"attachments.{i}.content"
            ) from None
        filename = attachment.get("filename")
        if not isinstance(filename, str) or not filename:
            raise ValidationError("The attachment filename parameter is required.", f"attachments.{i}.filename")
        kind = attachment.get("type")
        if kind is not None and (not isinstance(kind, str) or not kind or "\r" in kind or "\n" in kind):
            raise ValidationError("The attachment type cannot contain CRLF characters.", f"attachments.{i}.type")
        disposition = attachment.get("disposition", "attachment")
        if disposition not in ("attachment", "inline"):
            raise ValidationError(
                "The disposition of your attachment can be either 'inline' or 'attachment'.",
                f"attachments.{i}.disposition",
            )
        if disposition == "inline" and not attachment.get("content_id"):
            raise ValidationError(
                "The content_id parameter is required if the disposition is 'inline'.", f"attachments.{i}.content_id"
            )


@dataclass
class _State:
    api_key: str
    max_body_bytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    script: deque[_Scripted] = field(default_factory=deque)
    requests: list[PeerRequest] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    held: int = 0
    """Mail sends waiting, unanswered, for ``release``."""
    most_held: int = 0
    """The most mail sends held unanswered at one time."""
    refused: dict[str, _Failure] = field(default_factory=dict)
    """Addresses (lower case) whose every mail send is answered with this failure."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, state: _State) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that time out and hang up are part of the tests."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        state = self.server.state
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        too_large = length > state.max_body_bytes
        body = b"" if too_large else self.rfile.read(length)
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        path = self.path.split("?", 1)[0]

        scripted: _Scripted | None = None
        if path == MAIL_SEND_PATH and self.command == "POST":
            with state.lock:
                scripted = state.refused.get(_first_recipient(payload)) or (
                    state.script.popleft() if state.script else None
                )

        if isinstance(scripted, _Delay):
            if state.stopping.wait(scripted.seconds):
                self.close_connection = True
                return  # the peer is stopping: drop the connection unanswered
        if isinstance(scripted, _Hold):
            with state.lock:
                state.held += 1
                state.most_held = max(state.most_held, state.held)
            while not state.released.wait(0.05):
                if state.stopping.is_set():
                    self.close_connection = True
                    return
            with state.lock:
                state.held -= 1
            scripted = _Failure(scripted.status, error_body(_DEFAULT_MESSAGES.get(scripted.status, "error")), {})

        status, answer, extra = self._decide(scripted, path, headers, body, payload, too_large)
        message_id = secrets.token_urlsafe(16) if status == 202 else None
        if message_id is not None:
            extra["X-Message-Id"] = message_id
        with state.lock:
            state.requests.append(
                PeerRequest(
                    method=self.command,
                    path=self.path,
                    headers=headers,
                    body=body,
                    payload=payload,
                    status=status,
                    message_id=message_id,
                )
            )
        try:
            self.send_response(status)
            if answer:
                self.send_header("Content-Type", "application/json")
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            if too_large:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(answer)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) and closed its end
            self.close_connection = True

    def _decide(
        self,
        scripted: _Scripted | None,
        path: str,
        headers: dict[str, str],
        body: bytes,
        payload: Any,
        too_large: bool,
    ) -> tuple[int, bytes, dict[str, str]]:
        """The status, body and extra headers of the answer."""
        state = self.server.state
        if isinstance(scripted, _Failure):
            return scripted.status, scripted.body, dict(scripted.headers)
        if isinstance(scripted, _RateLimit):
            reset = math.ceil(time.time() + scripted.reset_in_seconds)
            rate_headers = {
                "X-RateLimit-Limit": str(scripted.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            return 429, error_body(_DEFAULT_MESSAGES[429]), rate_headers
        if path != MAIL_SEND_PATH:
            return 404, error_body(_DEFAULT_MESSAGES[404]), {}
        if self.command != "POST":
            return 405, error_body(_DEFAULT_MESSAGES[405]), {}
        if headers.get("authorization") != f"Bearer {state.api_key}":
            return 401, error_body(_DEFAULT_MESSAGES[401]), {}
        if too_large:
            return 413, error_body(_DEFAULT_MESSAGES[413]), {}
        if payload is None:
            return 400, error_body("Bad Request"), {}
        try:
            validate_mail(payload)
        except ValidationError as error:
            return 400, error_body(error.message, error.field), {}
        return 202, b"", {}


class SendGridPeer:
    """SendGrid's v3 mail send on loopback; use as a context manager or with ``start()``/``stop()``."""

    def __init__(self, api_key: str | None = None, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.api_key = api_key or f"SG.test.{secrets.token_urlsafe(24)}"
        self._state = _State(api_key=self.api_key, max_body_bytes=max_body_bytes)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> SendGridPeer:
        if self._server is not None:
            raise RuntimeError("the SendGrid peer is already running")
        self._state.stopping.clear()
        self._server = _Server(self._state)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="sendgrid-peer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port (later connections are refused); slow answers are abandoned."""
        if self._server is None:
            return
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SendGridPeer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the SendGrid peer was never started")
        return self._port

    @property
    def host(self) -> str:
        """The base URL to give the client as ``host`` (it appends ``/v3/mail/send``)."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ what it saw

    @property
    def requests(self) -> list[PeerRequest]:
        """Every request answered, accepted or not, in arrival order (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def received(self) -> list[PeerRequest]:
        """The messages accepted with a 202 (a copy)."""
        return [r for r in self.requests if r.accepted]

    # ------------------------------------------------------------ scripting the next answers

    def fail_next(
        self,
        status: int,
        count: int = 1,
        body: bytes | str | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` mail sends with ``status`` and an error body (SendGrid's shape by default)."""
        self._enqueue(_Failure(status=status, body=_error_data(status, body), headers=dict(headers or {})), count)

    def refuse_address(self, address: str, status: int, body: bytes | str | dict[str, Any] | None = None) -> None:
        """Answer every mail send to ``address`` with ``status`` and an error body, in whatever order
        the sends arrive (the scripted answers are left for the other sends)."""
        data = _error_data(status, body)
        with self._state.lock:
            self._state.refused[address.lower()] = _Failure(status=status, body=data, headers={})

    def rate_limit_next(self, reset_in_seconds: float, count: int = 1, *, limit: int = 600) -> None:
        """Answer the next ``count`` mail sends with a 429 whose X-RateLimit-Reset is that far ahead."""
        self._enqueue(_RateLimit(reset_in_seconds=reset_in_seconds, limit=limit), count)

    def delay_next(self, seconds: float, count: int = 1) -> None:
        """Wait ``seconds`` before handling each of the next ``count`` mail sends (then handle them normally).

        Like the real service, a message the client gave up on is still accepted and recorded.
        """
        self._enqueue(_Delay(seconds=seconds), count)

    def hold_next(self, status: int = 503, count: int = 1) -> None:
        """Leave the next ``count`` mail sends unanswered until ``release``, then answer ``status``."""
        self._state.released.clear()
        self._enqueue(_Hold(status=status), count)

    @property
    def held(self) -> int:
        """How many mail sends are waiting, unanswered, for ``release``."""
        with self._state.lock:
            return self._state.held

    @property
    def most_held(self) -> int:
        """The most mail sends that were held unanswered at one time (how many a client had in flight)."""
        with self._state.lock:
            return self._state.most_held

    def release(self) -> None:
        """Answer every held mail send (and any held later) with its scripted status."""
        self._state.released.set()

    def recover(self) -> None:
        """Forget every scripted answer: the service is back."""
        with self._state.lock:
            self._state.script.clear()

    def _enqueue(self, item: _Scripted, count: int) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._state.lock:
            self._state.script.extend([item] * count)


# ---------------------------------------------------------------- the Event Webhook, SendGrid's side

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def delivery_event(request: PeerRequest, event: str, *, timestamp: int | None = None, **fields: Any) -> dict[str, Any]:
    """The event SendGrid would post about a message it accepted, as its Event Webhook shapes it.

    The message's custom args are merged into the event's top level; ``sg_message_id`` starts with
    the ``X-Message-Id`` that answered the send; each event has a unique ``sg_event_id``.
    """
    if not request.accepted or not isinstance(request.payload, dict):
        raise ValueError("only an accepted message has delivery events")
    payload = request.payload
    categories = payload.get("categories") or []
    shaped: dict[str, Any] = {
        "email": payload["personalizations"][0]["to"][0]["email"],
        "timestamp": int(time.time()) if timestamp is None else timestamp,
        "smtp-id": f"<{secrets.token_hex(8)}@ismtpd-test>",
        "event": event,
        "category": categories[0] if len(categories) == 1 else categories,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": f"{request.message_id}.recvd-test-{secrets.token_hex(4)}-1-0",
        **(payload.get("custom_args") or {}),
    }
    if event == "delivered":
        shaped["response"] = "250 OK"
    elif event == "deferred":
        shaped.update(response="400 try again later", attempt="1")
    elif event in ("bounce", "dropped"):
        shaped["reason"] = fields.pop("reason", "550 5.1.1 The email account that you tried to reach does not exist")
        if event == "bounce":
            shaped.update(type=fields.pop("type", "bounce"), status="5.1.1")
    shaped.update(fields)
    return shaped


class EventWebhookSigner:
    """What SendGrid does when the Signed Event Webhook is on: an ECDSA P-256 key pair of the account;
    each post is signed over ``timestamp + raw body`` (SHA-256) and carries the base64 DER signature
    and the timestamp in two headers. The account shows the public key as base64 DER."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        der = self._key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key.sign(stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: stamp,
        }
