"""People at the client, played for the demo as they would act with a browser (the screening
provider's stand-in, tests/checkr_peer.py, plays the provider's side the same way)."""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2

log = logging.getLogger("demo")

CERTIFICATION_LINK = re.compile(r"https?://[^\s\"<>]+/c/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


async def iam_owner(
    outbox: Path, revoke: set[str], pause: Callable[[float], Awaitable[None]], since: float = 0.0
) -> None:
    """The client's IAM owner: opens each certification link the emails written since ``since`` (a
    time stamp: earlier runs' links were signed with their own key) bring, on the page revokes the
    engineers in ``revoke`` and keeps the others, as a person with a browser would (no script needed)."""
    answered: set[str] = set()
    async with httpx2.AsyncClient(timeout=10) as http:
        while True:
            for link in sorted(_certification_links(outbox, since) - answered):
                answered.add(link)
                page = await http.get(link)
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
                if page.status_code != 200 or csrf is None:
                    continue  # a round already closed
                form = {"csrf": html.unescape(csrf.group(1))}
                for row in page.text.split("<tr>"):
                    found = re.search(r"<small>([^<]+)</small>.*name=\"(d\d+)\"", row, re.DOTALL)
                    if found:
                        who = html.unescape(found.group(1))
                        form[found.group(2)] = "revoke" if who in revoke else "keep"
                answer = await http.post(link, data=form)
                log.info("client IAM owner answered the access certification: %s", _answers(answer.text))
            await pause(2)


def _certification_links(outbox: Path, since: float) -> set[str]:
    links = set()
    for path in (p for p in outbox.glob("*.eml") if p.stat().st_mtime >= since):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",))
        if isinstance(body, email.message.EmailMessage):
            links.update(CERTIFICATION_LINK.findall(body.get_content()))
    return links


def _answers(page: str) -> str:
    return "; ".join(html.unescape(re.sub(r"<[^>]+>", "", item)) for item in re.findall(r"<li>(.*?)</li>", page))
