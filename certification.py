"""The access certification page: the client's IAM owner keeps or revokes each engineer of a round.

Run it with ``python certification.py`` (CERTIFICATION_KEY set, CERTIFICATION_HOST/CERTIFICATION_PORT;
CERTIFICATION_BASE_URL is where the client reaches it). ``GET /c/<token>`` shows the open round from
the engagement's ``certification`` query: each engineer, role and groups, with keep or revoke;
``POST /c/<token>`` sends one ``CertifyAccess`` Update per answer, as the IAM owner named in the spec
(``actor_source: signed_link``), and shows what the engagement accepted or refused.

The page is server-rendered with every value escaped and needs no script. A link that is malformed,
tampered with, expired or for a round that is not the open one gets 403 and changes nothing; a post
also needs the form token bound to its link (CSRF). Logs never carry the token, a name or an email.
"""

from __future__ import annotations

import contextlib
import html
import logging
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from adapters.certification_links import MAX_TOKEN_CHARS, InvalidLink, LinkClaims, LinkSigner
from adapters.http_endpoint import HEALTH, in_background, run
from adapters.temporal_connection import connect
from domain.commands import CertifyAccess
from domain.spec import MAX_ENGINEERS
from domain.views import CertificationView
from settings import Settings
from workflows.commands import send
from workflows.engagement import EngagementWorkflow

MAX_FORM_BYTES = 16 * 1024
MAX_ADDRESSES = 10_000
"""Addresses the rate limit remembers before it forgets the quiet ones."""
"""A form of MAX_ENGINEERS answers is far smaller; anything larger is not this page's form."""
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the path: never hand it to another site
    "Cache-Control": "no-store",
}

Decision = Literal["keep", "revoke"]
DECISIONS: dict[str, Decision] = {"keep": "keep", "revoke": "revoke"}

log = logging.getLogger("certification")


class Certifications(Protocol):
    """The engagements the page reads and sends answers to (Temporal, or a stand-in in unit tests)."""

    async def view(self, engagement_id: str) -> CertificationView: ...

    async def certify(self, engagement_id: str, command: CertifyAccess) -> str:
        """The engagement's acknowledgement; raises ``Refused`` with its reason."""
        ...


class Refused(Exception):
    pass


class TemporalCertifications:
    def __init__(self, client: Client) -> None:
        self._client = client

    async def view(self, engagement_id: str) -> CertificationView:
        handle = self._client.get_workflow_handle(engagement_id)
        view: CertificationView = await handle.query(EngagementWorkflow.certification)
        return view

    async def certify(self, engagement_id: str, command: CertifyAccess) -> str:
        try:
            ack = await send(self._client.get_workflow_handle(engagement_id), command)
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            raise Refused(cause.message if isinstance(cause, ApplicationError) else "refused") from None
        return ack.accepted


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        "<style>body{font-family:Arial,Helvetica,sans-serif;color:#1f2933;max-width:56rem;margin:2rem auto;"
        "padding:0 1rem}table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;"
        "padding:.5rem;border-bottom:1px solid #e5e7eb}fieldset{border:0;padding:0;margin:0}"
        "button{font-size:1rem;padding:.5rem 1.5rem;margin-top:1rem}"
        ".visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}</style>\n"
        f"</head>\n<body>\n<main>\n<h1>{_e(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _refused(status: int = 403) -> HTMLResponse:
    return _page(
        "This link is not valid",
        "<p>This certification link is not valid: it may have expired, the round may be closed, or the link "
        "may be incomplete. Please use the link from the latest email, or reply to that email.</p>",
        status,
    )


def _form(token: str, form_token: str, view: CertificationView) -> str:
    rows = []
    for index, entry in enumerate(view.engineers):
        groups = ", ".join(entry.groups) or "no group"
        who = f"<td>{_e(entry.name)}<br><small>{_e(entry.email)}</small></td><td>{_e(entry.role)}</td>"
        if entry.decision is not None:
            done = "default applied" if entry.default_applied else f"by {_e(entry.decided_by)}"
            answer = f"<td>{_e(entry.decision)} ({done})</td>"
        else:
            legend = f'<legend class="visually-hidden">{_e(entry.name)}</legend>'
            answer = (
                f"<td><fieldset>{legend}"
                + "".join(
                    f'<label><input type="radio" name="d{index}" value="{choice}"> {choice}</label> '
                    for choice in ("keep", "revoke")
                )
                + "</fieldset></td>"
            )
        rows.append(f"<tr>{who}<td>{_e(groups)}</td>{answer}</tr>")
    due = view.due_at.strftime("%Y-%m-%d %H:%M UTC") if view.due_at else "-"
    return (
        f"<p>{_e(view.client)}, contract {_e(view.contract_id)}: access certification round {view.round}. "
        f"For each engineer, choose keep or revoke. A revocation takes effect at once. Please answer by {_e(due)}."
        "</p>\n"
        f'<form method="post" action="/c/{_e(token)}">\n'
        f'<input type="hidden" name="csrf" value="{_e(form_token)}">\n'
        "<table><thead><tr><th>Engineer</th><th>Role</th><th>Groups</th><th>Decision</th></tr></thead>\n"
        f"<tbody>{''.join(rows)}</tbody></table>\n"
        '<button type="submit">Send my answers</button>\n</form>'
    )


async def _form_body(request: Request) -> dict[str, str] | None:
    """The posted form within its bounds (size, fields, characters), or None."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = parse_qsl(body.decode("ascii"), max_num_fields=MAX_ENGINEERS + 2, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form or len(name) > 8 or len(value) > 64 or not value.isprintable() or not name.isprintable():
            return None
        form[name] = value
    return form


class Attempts:
    """At most ``limit`` requests from one address per ``window`` (a page hammered, links guessed at):
    past it the page answers 429 until the window has moved on. In memory, per process."""

    def __init__(self, clock: Callable[[], datetime], limit: int = 30, window: timedelta = timedelta(minutes=1)):
        self._clock, self._limit, self._window = clock, limit, window
        self._seen: dict[str, deque[datetime]] = {}

    def allow(self, address: str) -> bool:
        now = self._clock()
        if len(self._seen) > MAX_ADDRESSES:  # many addresses at once: forget those quiet for a window
            self._seen = {a: times for a, times in self._seen.items() if times and now - times[-1] < self._window}
        times = self._seen.setdefault(address, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) >= self._limit:
            return False
        times.append(now)
        return True


def certification_app(
    signer: LinkSigner,
    engagements: Certifications,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    attempts: Attempts | None = None,
) -> Starlette:
    limits = attempts or Attempts(clock)

    def limited(handle: Callable[[Request, str], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """A ``/c/<token>`` route behind the rate limit, handed its token (cut just past the longest a link
        can be, so an oversized one is refused without being read whole)."""

        async def endpoint(request: Request) -> Response:
            if not limits.allow(request.client.host if request.client else "unknown"):
                response = _page("Too many requests", "<p>Please wait a minute, then open your link again.</p>", 429)
                response.headers["Retry-After"] = "60"
                return response
            return await handle(request, str(request.path_params["token"])[: MAX_TOKEN_CHARS + 1])

        return endpoint

    async def open_round(token: str) -> tuple[LinkClaims, CertificationView] | None:
        try:
            claims = signer.verify(token, clock())
        except InvalidLink as invalid:
            log.warning("refused a certification link: %s", invalid)
            return None
        try:
            view = await engagements.view(claims.engagement_id)
        except Exception:  # no such engagement, or it cannot answer: the link opens nothing
            log.warning("no certification round to show for a valid link (round %d)", claims.round)
            return None
        if not view.open or view.round != claims.round:
            log.warning("refused a link to round %d: not the open round", claims.round)
            return None
        return claims, view

    async def show(request: Request, token: str) -> Response:
        opened = await open_round(token)
        if opened is None:
            return _refused()
        _, view = opened
        return _page("Access certification", _form(token, signer.form_token(token), view))

    async def answer(request: Request, token: str) -> Response:
        form = await _form_body(request)
        if form is None:
            return _page("Not accepted", "<p>The form could not be read. Please open your link again.</p>", 400)
        if not signer.form_token_ok(token, form.get("csrf", "")):
            return _refused()
        opened = await open_round(token)
        if opened is None:
            return _refused()
        claims, view = opened
        answers: list[tuple[int, Decision]] = []
        for name, value in form.items():
            if name == "csrf":
                continue
            digits = name[1:]
            if not (name.startswith("d") and digits.isdigit() and int(digits) < len(view.engineers)):
                return _page("Not accepted", "<p>The form does not match this round. Open the link again.</p>", 400)
            choice = DECISIONS.get(value)
            if choice is None:
                return _page("Not accepted", "<p>Each answer is keep or revoke.</p>", 400)
            answers.append((int(digits), choice))
        if not answers:
            return _page("Nothing sent", "<p>Choose keep or revoke for at least one engineer.</p>", 400)
        results = []
        for index, decision in sorted(answers):
            entry = view.engineers[index]
            command = CertifyAccess(
                actor=view.iam_owner_email,
                actor_source="signed_link",
                round=claims.round,
                email=entry.email,
                decision=decision,
            )
            try:
                outcome = "accepted: " + await engagements.certify(claims.engagement_id, command)
            except Refused as refused:
                outcome = f"not accepted: {refused}"
            results.append(f"<li>{_e(entry.name)} ({_e(entry.email)}): {_e(decision)}, {_e(outcome)}</li>")
        return _page(
            "Thank you",
            f"<p>Your answers for round {claims.round}:</p>\n<ul>{''.join(results)}</ul>\n"
            f'<p><a href="/c/{_e(token)}">Back to the round</a></p>',
        )

    return Starlette(
        routes=[
            Route("/c/{token}", limited(show), methods=["GET"]),
            Route("/c/{token}", limited(answer), methods=["POST"]),
            HEALTH,
        ]
    )


def _signer(settings: Settings) -> LinkSigner:
    signer = settings.certification_links()
    if signer is None:
        raise SystemExit("CERTIFICATION_KEY is not set: refusing to serve links nobody can verify")
    return signer


@contextlib.asynccontextmanager
async def page_app(settings: Settings) -> AsyncIterator[Starlette]:
    signer = _signer(settings)
    client = await connect(settings)
    yield certification_app(signer, TemporalCertifications(client))


def server_config(app: Starlette, settings: Settings) -> uvicorn.Config:
    """The server of the page. No access log: a request line holds the path, and the path holds the
    link's token (a capability until it expires); the page logs each answer itself, without it. The
    rate limit counts by the client's address: behind a trusted proxy, the one it forwards."""
    return uvicorn.Config(
        app,
        host=settings.certification_host,
        port=settings.certification_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.certification_trusted_proxies,
    )


@contextlib.asynccontextmanager
async def serving(settings: Settings, client: Client) -> AsyncIterator[None]:
    """The page served in the background for the block (the demo's way), with the given client."""
    app = certification_app(_signer(settings), TemporalCertifications(client))
    log.info("access certification page on http://%s:%d", settings.certification_host, settings.certification_port)
    async with in_background(uvicorn.Server(server_config(app, settings))):
        yield


async def main() -> None:
    settings = Settings()
    _signer(settings)  # before anything is started
    async with page_app(settings) as app:
        config = server_config(app, settings)
        log.info("access certification page on http://%s:%d", settings.certification_host, settings.certification_port)
        await uvicorn.Server(config).serve()  # handles SIGINT/SIGTERM: drains requests, then returns


def _arguments(argv: list[str]) -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="certification.py",
        description='Serve the access certification page (README "Access certification"); configured by '
        "CERTIFICATION_KEY, CERTIFICATION_BASE_URL, CERTIFICATION_HOST and CERTIFICATION_PORT.",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    _arguments(sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(main())
