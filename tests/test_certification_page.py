"""The whole certification path in a real browser (Debian's Chromium, driven by Playwright, headless):
the link from the email the IAM owner received, the page, a revoke decision, and the engineer gone
from the SCIM peer."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import async_playwright
from starlette.applications import Starlette
from temporalio.testing import WorkflowEnvironment

from adapters.certification_links import LinkSigner
from adapters.db import EngagementStore
from adapters.http_endpoint import in_background
from adapters.scim import ScimDirectory
from certification import TemporalCertifications, certification_app, server_config
from domain.commands import RecordNdaSigned, RequestAccessReview
from domain.vocabulary import Phase
from settings import Settings
from tests.conftest import free_port
from tests.helpers import Harness
from tests.sample_spec import ROLES, spec_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ALICE, CAROL = "alice@firm.example", "carol@firm.example"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed (scripts/test.sh)")


@contextlib.asynccontextmanager
async def serving(app: Starlette, port: int) -> AsyncIterator[None]:
    """The page's own server (``certification.server_config``), in the background."""
    server = uvicorn.Server(server_config(app, Settings(certification_host="127.0.0.1", certification_port=port)))
    async with in_background(server):
        yield


async def test_the_iam_owner_revokes_an_engineer_through_the_emailed_link(
    env: WorkflowEnvironment,
    store: EngagementStore,
    tenant: ScimDirectory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    signer = LinkSigner(b"browser-test-certification-key-32b", f"http://127.0.0.1:{port}")
    async with (
        Harness.running(env.client, store, tenant, tmp_path, links=signer) as harness,
        serving(certification_app(signer, TemporalCertifications(env.client)), port),
    ):
        engineers = [e for e in spec_data()["engineers"] if e["email"] == CAROL]
        engineers.append({**engineers[0], "name": "Alice Dev", "email": ALICE})
        spec = harness.spec(engineers=engineers, roles={"analyst": ROLES["analyst"]}, certification_default="keep")
        handle = await harness.start(spec)
        await harness.settle(handle, Phase.AWAITING_NDA)
        await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
        await harness.settle(handle, Phase.DELIVERY)
        await harness.update(handle, RequestAccessReview(actor="ian"))
        await harness.settle(handle, Phase.DELIVERY)
        assert (await harness.iam(CAROL)).groups == {"ticketing"}

        # The link, as the IAM owner reads it in the email.
        [email] = harness.received("access_certification")
        assert email["To"].addresses[0].addr_spec == "ian@acme.example"
        body = email.get_body(("plain",))
        assert body is not None
        match = LINK.search(body.get_content())
        assert match is not None, body.get_content()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page(java_script_enabled=False)  # the page needs no script
                response = await page.goto(match.group(0))
                assert response is not None and response.status == 200
                await page.get_by_role("heading", name="Access certification").wait_for()
                carol = page.locator("tr", has_text=CAROL)
                await carol.get_by_label("revoke").check()
                await page.get_by_role("button", name="Send my answers").click()
                await page.get_by_role("heading", name="Thank you").wait_for()
                assert "access is being revoked now" in await page.locator("main").inner_text()
                tampered = match.group(0)[:-3] + ("AAA" if not match.group(0).endswith("AAA") else "BBB")
                refused = await page.goto(tampered)
                assert refused is not None and refused.status == 403
            finally:
                await browser.close()

        # The revocation reached the engagement, which revoked at once and read it back from SCIM.
        view = await harness.settle(handle, Phase.DELIVERY)
        assert next(e for e in view.engineers if e.email == CAROL).suspended
        identity = await harness.iam(CAROL)
        assert identity.groups == set() and not identity.active
        assert (await harness.iam(ALICE)).groups == {"ticketing"}  # not answered yet: untouched
        token = match.group(0).rpartition("/")[2]
        assert token not in caplog.text and CAROL not in caplog.text  # no request line carries the link
        decided = [a for a in await harness.store.audit_entries(handle.id) if a.action == "certification_decided"]
        assert [(a.actor, a.details["engineer"], a.details["actor_source"]) for a in decided] == [
            ("ian@acme.example", CAROL, "signed_link")
        ]
