"""The worker's cache, concurrency and sticky timeout come from settings (WORKER_*); every default but the
cache's is Temporal's."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from activities.email import EmailActivities
from activities.engagement import EngagementActivities
from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.email import OutboxFolderSender
from adapters.outbox import OutboxStore
from adapters.scim import DirectoryPool
from settings import Settings
from worker import new_worker

LIMITS = ("max_cached_workflows", "max_concurrent_workflow_tasks", "max_concurrent_activities")


def limits_of(
    env: WorkflowEnvironment, store: EngagementStore, tmp_path: Path, settings: Settings | None
) -> tuple[list[int], timedelta | None]:
    engagement = EngagementActivities(store, DirectoryPool({}), AlertStore(store.engine))
    email = EmailActivities(OutboxStore(store.engine), OutboxFolderSender(tmp_path, "eo@firm.example", "EO"))
    # Built, never run: each on a task queue of its own (one client registers one worker per queue).
    config = new_worker(env.client, f"limits-{uuid.uuid4().hex[:8]}", engagement, email, limits=settings).config()
    limits = [int(config[name]) for name in LIMITS]  # type: ignore[literal-required]  # the names above are WorkerConfig keys
    return limits, config.get("sticky_queue_schedule_to_start_timeout")


async def test_worker_limits_are_settings(
    env: WorkflowEnvironment, store: EngagementStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the defaults (Temporal's cache: 1000; its sticky timeout: 10 s)
    assert limits_of(env, store, tmp_path, None) == ([100, 100, 100], timedelta(seconds=10))
    monkeypatch.setenv("WORKER_MAX_CACHED_WORKFLOWS", "250")
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", "20")
    monkeypatch.setenv("WORKER_MAX_CONCURRENT_ACTIVITIES", "30")
    monkeypatch.setenv("WORKER_STICKY_TIMEOUT", "PT3S")
    monkeypatch.setenv("SCIM_MAX_CLIENTS", "8")
    settings = Settings(_env_file=None)
    assert limits_of(env, store, tmp_path, settings) == ([250, 20, 30], timedelta(seconds=3))
    assert settings.scim_max_clients == 8
    for refused in ("PT0S", "PT10M", "10"):  # under a second, over five minutes, not a duration
        monkeypatch.setenv("WORKER_STICKY_TIMEOUT", refused)
        with pytest.raises(ValidationError, match="worker_sticky_timeout"):
            Settings(_env_file=None)
