"""An authorised admin reads an encrypted history in the real Temporal UI (issue 11, item 3).

The dev server's UI is pointed at the codec server (``--ui-codec-endpoint``); the admin signs in
once at the codec server with its token, in Debian's Chromium, and the browser's codec settings
include cross-origin credentials (as an admin sets them in the UI's codec dialog). The workflow's
input, held encrypted by the Temporal server, then shows decrypted on its page. A browser that never
signed in sees no personal data there.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from adapters.temporal_connection import connect
from settings import Settings
from tests.codec_peers import TOKEN, codec_server, key, keyring
from tests.conftest import free_port
from tests.devserver import TEMPORAL, requires_temporal
from tests.test_codec import EMAIL, Onboard, Onboarding, grant, refuse

RUN_EARLY = True  # one of the longest files: started first (tests/conftest.py)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    requires_temporal,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed (scripts/test.sh)"),
    pytest.mark.timeout(300),
]
WITHIN_MS = 60_000


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_an_admin_signed_in_at_the_codec_server_reads_the_history_decrypted_in_the_ui() -> None:
    ui_port = free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    async with codec_server(keyring(), max_body_bytes=1024 * 1024, origins=(ui,)) as codec:
        server = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(TEMPORAL),
            ui=True,
            ui_port=ui_port,
            dev_server_extra_args=["--ui-codec-endpoint", codec.url, "--ui-ip", "127.0.0.1"],
        )
        try:
            target = server.client.service_client.config.target_host
            settings = Settings(
                _env_file=None, temporal_address=target, payload_keys={"k1": key(1)}, payload_key_id="k1"
            )
            client = await connect(settings)
            queue = f"codec-ui-{uuid.uuid4().hex[:8]}"
            workflow_id = f"engagement-codec-ui-{uuid.uuid4().hex[:8]}"
            async with Worker(
                client,
                task_queue=queue,
                workflows=[Onboarding],
                activities=[grant, refuse],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ):
                await client.execute_workflow(
                    Onboarding.run, Onboard(name="Alice Dev", email=EMAIL), id=workflow_id, task_queue=queue
                )
            page_url = f"{ui}/namespaces/default/workflows/{workflow_id}"

            async with chromium() as browser:
                # Signed in: the codec settings of this browser include credentials (the UI's own keys).
                admin = await browser.new_context()
                settings_script = "".join(
                    f"localStorage.setItem({json.dumps(name)}, {json.dumps(json.dumps(value))});"
                    for name, value in (
                        ("endpoint", codec.url),
                        ("includeCredentials", True),
                        ("overrideRemoteCodecConfiguration", True),
                    )
                )
                await admin.add_init_script(settings_script)
                page = await admin.new_page()
                await page.goto(f"{codec.url}/login")
                await page.get_by_label("Codec token").fill(TOKEN)
                await page.get_by_role("button", name="Sign in").click()
                await page.get_by_text("Signed in for").wait_for(timeout=WITHIN_MS)

                await page.goto(page_url)
                await page.get_by_text(EMAIL).first.wait_for(timeout=WITHIN_MS)

                # Never signed in: the same page shows the payloads still encrypted.
                stranger = await browser.new_context()
                await stranger.add_init_script(settings_script)
                other = await stranger.new_page()
                await other.goto(page_url)
                await other.get_by_text(workflow_id).first.wait_for(timeout=WITHIN_MS)
                await other.wait_for_load_state("networkidle")
                assert EMAIL not in await other.content()
        finally:
            await server.shutdown()
