"""The certification page's rate limit behind a reverse proxy, served by uvicorn on loopback as
``certification.py`` serves it: from a trusted proxy, X-Forwarded-For names the client whose attempts
are counted; from any other sender the header is ignored, so a client can neither pick a fresh count
for itself nor spend another's."""

from __future__ import annotations

from datetime import timedelta

import httpx
import uvicorn

from adapters.http_endpoint import in_background
from certification import certification_app, server_config
from domain.decisions import certification as rules
from domain.views import certification_view
from settings import Settings
from tests.conftest import free_port
from tests.unit.test_certification import NOW, SIGNER, Engagements, delivery

TOKEN = SIGNER.token("engagement-x", 1, NOW + timedelta(days=14))
WRONG = f"{TOKEN[:-2]}AA"
ATTACKER, OWNER = "198.51.100.7", "203.0.113.20"


async def statuses_after_thirty_wrong_links(trusted: str) -> tuple[int, int]:
    """30 wrong links forwarded for the attacker, then the IAM owner's own link, then the attacker's:
    what the owner and the attacker are answered."""
    change = delivery()
    rules.open_round(change)
    app = certification_app(SIGNER, Engagements(certification_view(change.spec, change.state)), clock=lambda: NOW)
    port = free_port()
    settings = Settings(certification_port=port, certification_trusted_proxies=trusted)
    async with in_background(uvicorn.Server(server_config(app, settings))):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as proxy:
            for _ in range(30):
                refused = await proxy.get(f"/c/{WRONG}", headers={"X-Forwarded-For": ATTACKER})
                assert refused.status_code == 403
            owner = await proxy.get(f"/c/{TOKEN}", headers={"X-Forwarded-For": OWNER})
            attacker = await proxy.get(f"/c/{TOKEN}", headers={"X-Forwarded-For": ATTACKER})
    return owner.status_code, attacker.status_code


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count() -> None:
    # The proxy is this host (loopback), named as a network: the attacker is held back, the owner not.
    assert await statuses_after_thirty_wrong_links("127.0.0.0/8") == (200, 429)


async def test_a_forwarded_address_from_an_untrusted_sender_is_ignored() -> None:
    # The page trusts another proxy: the header is the sender's say-so, so every request counts against
    # the sender's own address, and whoever sent the thirty wrong links is held back whatever it claims.
    assert await statuses_after_thirty_wrong_links("10.1.2.3") == (429, 429)
