"""The composition root: settings -> adapters -> activities -> Worker.

Run it with ``python worker.py`` next to a Temporal server; Ctrl-C drains in-flight work and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.email import EmailActivities
from activities.engagement import EngagementActivities
from activities.screening import ScreeningActivities
from adapters.alerts import AlertStore
from adapters.checkr import CheckrProvider
from adapters.db import EngagementStore, create_engine, start_embedded_postgres
from adapters.email import EmailSender, OutboxFolderSender, SendGridSender
from adapters.http_endpoint import run
from adapters.migration_lock import migrate_locked
from adapters.outbox import OutboxStore
from adapters.scim import DirectoryPool
from adapters.screening_store import ScreeningStore
from adapters.telemetry import (
    ActivityMetrics,
    Instruments,
    collect_forever,
    configure_logging,
    metrics_runtime,
    tracing_interceptor,
)
from adapters.temporal_connection import TemporalConnectionError, connect
from domain.screening import DEFAULT_JURISDICTIONS_FILE, load_jurisdictions
from settings import Settings
from workflows.background_check import BackgroundCheckWorkflow
from workflows.engagement import EngagementWorkflow
from workflows.screening import ScreeningWorkflow

WORKFLOWS = [EngagementWorkflow, BackgroundCheckWorkflow, ScreeningWorkflow]
# pydantic imports the email validator lazily, while validating; it is deterministic, so let the
# sandbox share the host's copy instead of re-importing it mid-workflow.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("email_validator", "idna", "opentelemetry")
)

log = logging.getLogger("worker")


def database_url(settings: Settings) -> str:
    """DATABASE_URL when set; otherwise an embedded PostgreSQL under the run folder."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.run_dir / "pgdata")


def email_sender(settings: Settings) -> EmailSender:
    if settings.sendgrid_api_key is not None:
        return SendGridSender(
            settings.sendgrid_api_key.get_secret_value(),
            settings.email_from,
            settings.email_from_name,
            host=settings.sendgrid_host,
            reply_to=settings.email_reply_to,
            timeout_seconds=settings.sendgrid_timeout_seconds,
            template_ids=settings.sendgrid_template_table(),
        )
    return OutboxFolderSender(settings.resolved_outbox_dir(), settings.email_from, settings.email_from_name)


def new_worker(
    client: Client,
    task_queue: str,
    engagement: EngagementActivities,
    email: EmailActivities,
    *,
    instruments: Instruments | None = None,
    screening: ScreeningActivities | None = None,
    limits: Settings | None = None,
) -> Worker:
    """The worker of the product's workflows and activities, with the cache and concurrency of
    ``limits`` (WORKER_* settings; their defaults when none are given)."""
    limits = limits or Settings.model_construct()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*engagement.all(), *email.all(), *(screening.all() if screening else [])],
        workflow_runner=SANDBOX,
        interceptors=[ActivityMetrics(instruments)] if instruments is not None else [],
        max_cached_workflows=limits.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=limits.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=limits.worker_max_concurrent_activities,
        sticky_queue_schedule_to_start_timeout=limits.worker_sticky_timeout,
    )


def screening_activities(settings: Settings, engine: AsyncEngine) -> ScreeningActivities:
    """The provider adapter (when its key is set) and the jurisdiction table (refused at start if bad)."""
    table = load_jurisdictions(settings.screening_jurisdictions_file or DEFAULT_JURISDICTIONS_FILE)
    provider = None
    if settings.checkr_api_key is not None:
        key = settings.checkr_api_key.get_secret_value()
        provider = CheckrProvider(settings.checkr_base_url, key, settings.checkr_timeout_seconds)
    return ScreeningActivities(provider, ScreeningStore(engine), table)


@contextlib.asynccontextmanager
async def engagement_worker(
    client: Client, settings: Settings, url: str, instruments: Instruments | None = None
) -> AsyncIterator[Worker]:
    """A running worker with its adapters; everything is closed on exit. With ``instruments``, the
    product's metrics are observed and refreshed every METRICS_INTERVAL."""
    await migrate_locked(settings.migration_database_url or url)
    engine = create_engine(url)
    directories = DirectoryPool(settings.scim_token_table(), settings.scim_timeout_seconds, settings.scim_max_clients)
    alerts = AlertStore(engine)
    engagement = EngagementActivities(EngagementStore(engine), directories, alerts)
    email = EmailActivities(
        OutboxStore(engine),
        email_sender(settings),
        alerts=alerts,
        reconciliation_window=settings.email_reconciliation_window,
        links=settings.certification_links(),
    )
    screening = screening_activities(settings, engine)
    worker = new_worker(
        client, settings.task_queue, engagement, email, instruments=instruments, screening=screening, limits=settings
    )
    refresh = (
        asyncio.create_task(collect_forever(client, engine, instruments, settings.metrics_interval))
        if instruments is not None
        else None
    )
    try:
        async with worker:
            yield worker
    finally:
        if refresh is not None:
            refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresh
        await screening.close()
        await directories.close()
        await engine.dispose()


async def main() -> None:
    settings = Settings()
    url = database_url(settings)
    runtime = metrics_runtime(settings.metrics_host, settings.metrics_port) if settings.metrics_port else None
    interceptors = [tracing_interceptor()] if settings.tracing_enabled else []
    try:
        client = await connect(settings, runtime=runtime, interceptors=interceptors)
    except TemporalConnectionError as error:
        raise SystemExit(f"error: {error}") from None
    instruments = Instruments(runtime.metric_meter) if runtime is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with engagement_worker(client, settings, url, instruments):
        if runtime is not None:
            log.info("metrics at http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
        log.info("worker polling task queue %r at %s", settings.task_queue, settings.temporal_address)
        await stop.wait()
        log.info("shutting down: finishing in-flight tasks")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="worker.py",
        description="Run the engagement worker: it polls TASK_QUEUE on Temporal and performs the workflows' "
        "activities (PostgreSQL, SCIM, email). Configured by the environment or .env (README "
        '"Settings"); Ctrl-C or SIGTERM finishes in-flight tasks and exits.',
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments()  # --help prints the help and exits; nothing is started before
    configure_logging(Settings().log_format)
    run(main())
