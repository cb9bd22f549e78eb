"""The signed, expiring links of access certification, and the form token bound to each.

A link is ``<CERTIFICATION_BASE_URL>/c/<token>``; the token is base64url(JSON {"e": engagement
workflow id, "r": round, "x": expiry as Unix seconds}) + "." + base64url(HMAC-SHA256(key, "link" +
payload)). Built by the email activity and checked by the certification page, never in a workflow:
the key stays with the worker and the page. The token carries no personal data.

``verify`` refuses (``InvalidLink``) anything it did not sign, anything past its expiry, and any
input beyond the bounds below before it decodes anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_TOKEN_CHARS = 512
MAX_ENGAGEMENT_ID = 200
MAX_ROUND = 1_000_000
_TOKEN = re.compile(r"\A[A-Za-z0-9_-]{1,400}\.[A-Za-z0-9_-]{43}\Z")
_ENGAGEMENT_ID = re.compile(r"\A[A-Za-z0-9._/-]{1,200}\Z")


class InvalidLink(Exception):
    """Not a link this service signed, or no longer valid; the reason is for the log, not the reader."""


@dataclass(frozen=True)
class LinkClaims:
    engagement_id: str
    round: int
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, key: bytes, base_url: str) -> None:
        if len(key) < 32:
            raise ValueError("CERTIFICATION_KEY must be at least 32 bytes")
        self._key = key
        self.base_url = base_url.rstrip("/")

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\x00" + data, hashlib.sha256).digest()

    def token(self, engagement_id: str, round: int, expires_at: datetime) -> str:
        if not _ENGAGEMENT_ID.match(engagement_id) or not 1 <= round <= MAX_ROUND:
            raise ValueError("an engagement id or round outside the link's bounds")
        claims = {"e": engagement_id, "r": round, "x": int(expires_at.timestamp())}
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{_b64(self._mac(b'link', payload.encode()))}"

    def link(self, engagement_id: str, round: int, expires_at: datetime) -> str:
        return f"{self.base_url}/c/{self.token(engagement_id, round, expires_at)}"

    def verify(self, token: str, now: datetime) -> LinkClaims:
        if len(token) > MAX_TOKEN_CHARS or not _TOKEN.match(token):
            raise InvalidLink("malformed token")
        payload, signature = token.split(".")
        try:
            given = _unb64(signature)
        except (binascii.Error, ValueError):
            raise InvalidLink("malformed signature") from None
        if not hmac.compare_digest(given, self._mac(b"link", payload.encode())):
            raise InvalidLink("bad signature")
        try:
            claims = json.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            raise InvalidLink("malformed payload") from None
        if not isinstance(claims, dict) or set(claims) != {"e", "r", "x"}:
            raise InvalidLink("unexpected claims")
        engagement_id, round, expiry = claims["e"], claims["r"], claims["x"]
        if not isinstance(engagement_id, str) or not _ENGAGEMENT_ID.match(engagement_id):
            raise InvalidLink("bad engagement")
        if type(round) is not int or not 1 <= round <= MAX_ROUND or type(expiry) is not int:
            raise InvalidLink("bad round or expiry")
        try:
            expires_at = datetime.fromtimestamp(expiry, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidLink("bad expiry") from None
        if now >= expires_at:
            raise InvalidLink("expired")
        return LinkClaims(engagement_id=engagement_id, round=round, expires_at=expires_at)

    def form_token(self, token: str) -> str:
        """The CSRF token of the page a link opens: bound to that link, so no other page can post for it."""
        return _b64(self._mac(b"form", token.encode()))

    def form_token_ok(self, token: str, given: str) -> bool:
        if len(given) > 64:
            return False
        return hmac.compare_digest(given.encode(), self.form_token(token).encode())
