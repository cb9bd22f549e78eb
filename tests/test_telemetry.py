"""The worker's metrics endpoint, after it ran an engagement on the dev server: Temporal's own
metrics and the product's (engagements by phase, trigger → IAM confirmation, emails by state)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from adapters.alerts import AlertStore
from adapters.db import EngagementStore, create_engine
from adapters.scim import ScimDirectory
from adapters.telemetry import Instruments, JsonLogFormatter, collect, configure_logging, metrics_runtime
from adapters.temporal_connection import connect
from cli.engagements import read_status, send_command, start_engagement
from domain.commands import RecordNdaSigned
from domain.spec import EngagementSpec
from domain.vocabulary import person_ref
from settings import Settings
from tests.conftest import free_port
from tests.devserver import address, dev_server, requires_temporal
from tests.sample_spec import ALL_GROUPS, spec_data
from worker import engagement_worker

__all__ = ["dev_server"]

pytestmark = requires_temporal


def sample(text: str, name: str, *labels: str) -> float | None:
    """The value of the first sample of ``name`` whose labels include every one of ``labels``."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(label in line for label in labels):
                return float(line.rsplit(" ", 1)[1])
    return None


async def test_metrics_endpoint_serves_temporal_s_and_the_product_s(
    dev_server: WorkflowEnvironment, database_url: str, tenant: ScimDirectory, tmp_path: Path
) -> None:
    for group in ALL_GROUPS:
        await tenant.create_group(group)
    port = free_port()
    runtime = metrics_runtime("127.0.0.1", port)
    settings = Settings(
        temporal_address=address(dev_server), task_queue=f"metrics-{port}", run_dir=tmp_path, database_url=database_url
    )
    client: Client = await connect(settings, runtime=runtime)
    instruments = Instruments(runtime.metric_meter)
    spec = EngagementSpec.model_validate(spec_data(tenant.base_url))
    async with engagement_worker(client, settings, database_url, instruments):
        handle = await start_engagement(client, spec, settings.task_queue)
        await send_command(client, handle.id, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
        deadline = time.monotonic() + 60
        while not (view := await read_status(client, handle.id)).settled or view.phase.value == "awaiting_nda":
            assert time.monotonic() < deadline, view
            await asyncio.sleep(0.3)
        engine = create_engine(database_url)
        try:
            await collect(client, engine, instruments)
        finally:
            await engine.dispose()
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text

    queue = f'task_queue="{settings.task_queue}"'
    assert (sample(text, "temporal_activity_schedule_to_start_latency_count", queue) or 0) > 0, text
    assert (sample(text, "temporal_workflow_task_schedule_to_start_latency_count", queue) or 0) > 0, text
    confirmed = sample(text, "engagement_access_confirmation_seconds_count")
    assert confirmed is not None and confirmed >= 3, text  # one convergence per engineer at least
    assert sample(text, "engagement_access_confirmation_seconds_bucket", 'le="+Inf"') == confirmed
    assert (sample(text, "engagements", 'phase="awaiting_nda"') or 0) + (
        sample(text, "engagements", 'phase="onboarding"') or 0
    ) >= 1
    assert (sample(text, "engagement_emails", 'state="sent"') or 0) >= 1, text
    assert "@" not in "".join(line for line in text.splitlines() if not line.startswith("#")), (
        "personal data in metrics"
    )


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("worker", logging.WARNING, __file__, 1, "parked %s", ("effect 7",), None)
    record.temporal_activity = {"activity_type": "send_email", "workflow_id": "engagement-ACME-1"}
    entry = json.loads(JsonLogFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["message"] == "parked effect 7"
    assert entry["temporal_activity"]["activity_type"] == "send_email"


async def test_the_worker_s_logs_name_no_engineer_when_it_calls_the_iam(
    tenant: ScimDirectory, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTTP client logs every request's URL at INFO, and a SCIM lookup carries the user name (an
    email) in its filter: the worker's logging keeps those request lines out."""
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    configure_logging("json")
    try:
        email = "pat.private@firm.example"
        await tenant.ensure_user(user_name=email, display_name="Pat Private", email=email)
        assert await tenant.find_user(email) is not None
        logging.getLogger("worker").info("converged %s", "engagement-ACME-1")  # a line of its own still shows
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    logged = capsys.readouterr().err
    assert "converged engagement-ACME-1" in logged
    assert "pat.private" not in logged and "Pat Private" not in logged and "pat.private%40" not in logged


async def test_an_alert_is_logged_without_its_message_and_engineers_by_pseudonym(
    store: EngagementStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    engagement = f"engagement-LOG-{uuid.uuid4().hex[:8]}"
    await AlertStore(store.engine).raise_alert(
        engagement_id=engagement,
        alert_key=f"{engagement}/a",
        at=datetime(2026, 1, 5, tzinfo=UTC),
        kind="revocation_unconfirmed",
        message="revocation of pat.private@firm.example not confirmed (laptop stolen)",
    )
    assert f"[{engagement}] revocation_unconfirmed" in caplog.text
    assert "pat.private" not in caplog.text and "laptop" not in caplog.text
    assert (await AlertStore(store.engine).alerts(engagement))[0].message.startswith("revocation of pat.private")
    ref = person_ref("Pat.Private@firm.example ")
    assert ref == person_ref("pat.private@firm.example") and "pat" not in ref and ref.startswith("person:")
