"""Metrics, traces and JSON logs for the worker, each turned on by a setting.

Metrics: Temporal's own (task latencies, polls, failures) and the product's, on one Prometheus
endpoint (``METRICS_HOST:METRICS_PORT``) served by the SDK's runtime. The product's are made with the
runtime's metric meter: gauges refreshed every ``METRICS_INTERVAL`` from Temporal's visibility store
and from PostgreSQL, and what an activity interceptor observes (the converge_access activity is not
touched). Labels are phases, states, kinds and activity names: never a person's name or address.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from adapters.db_schema import alerts, email_outbox

if TYPE_CHECKING:
    from temporalio.contrib.opentelemetry import TracingInterceptor

log = logging.getLogger("telemetry")
Labels = tuple[tuple[str, str], ...]

PHASES = ("awaiting_nda", "onboarding", "delivery", "notice", "transition", "closed", "cancelled")
ENGAGEMENTS = "WorkflowType = 'EngagementWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
CONVERGE_ACCESS = "converge_access"
"""The activity whose success means the IAM confirmed a change (its input carries the trigger time, ``at``)."""
ACCESS_LATENCY = "engagement_access_confirmation_seconds"
ACCESS_LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
"""Seconds: the promise is "immediately", the alert fires at 15 minutes, an IAM outage can last hours."""


def metrics_runtime(host: str, port: int) -> Runtime:
    """A runtime whose metrics (the SDK's and every instrument of its meter) Prometheus scrapes at host:port."""
    prometheus = PrometheusConfig(
        bind_address=f"{host}:{port}",
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides={ACCESS_LATENCY: list(ACCESS_LATENCY_BUCKETS)},
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


@dataclass
class Instruments:
    """The product's metrics, on the runtime's meter."""

    meter: MetricMeter
    _seen: dict[str, set[Labels]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.meter
        self.engagements = m.create_gauge("engagements", "Engagements by phase (visibility count)")
        self.attention = m.create_gauge("engagements_needing_attention", "Engagements where a person must act")
        self.emails = m.create_gauge("engagement_emails", "Outbox messages by delivery state")
        self.alerts = m.create_gauge("engagement_admin_alerts", "Admin alerts raised, by kind and severity")
        self.activity_failures = m.create_counter(
            "engagement_activity_failures", "Failed activity attempts by activity (effects failing or parked)"
        )
        self.access_latency = m.create_histogram_float(
            ACCESS_LATENCY, "From the trigger of an access change to the IAM's confirmed read-back", "s"
        )

    def set_all(self, name: str, gauge: Any, counts: Mapping[Labels, int]) -> None:
        """Set each label set's count, and 0 for label sets seen before that are gone (a gauge keeps its last value)."""
        seen = self._seen.setdefault(name, set())
        for labels in seen - set(counts):
            gauge.set(0, dict(labels))
        for labels, count in counts.items():
            gauge.set(count, dict(labels))
        seen.update(counts)


async def collect(client: Client, engine: AsyncEngine, instruments: Instruments) -> None:
    """One refresh of the gauges: counts from visibility and from PostgreSQL, no personal data."""
    phases: dict[Labels, int] = {}
    for phase in PHASES:
        counted = await client.count_workflows(f"{ENGAGEMENTS} AND EngagementPhase = '{phase}'")
        phases[(("phase", phase),)] = counted.count
    instruments.set_all("engagements", instruments.engagements, phases)
    attention = await client.count_workflows(f"{ENGAGEMENTS} AND ExecutionStatus = 'Running' AND NeedsAttention = true")
    instruments.attention.set(attention.count)
    async with engine.connect() as connection:
        emails = await connection.execute(select(email_outbox.c.state, func.count()).group_by(email_outbox.c.state))
        instruments.set_all(
            "emails", instruments.emails, {(("state", str(state)),): int(n) for state, n in emails.all()}
        )
        raised = await connection.execute(
            select(alerts.c.kind, alerts.c.severity, func.count()).group_by(alerts.c.kind, alerts.c.severity)
        )
        counts: dict[Labels, int] = {
            (("kind", str(kind)), ("severity", str(severity))): int(n) for kind, severity, n in raised.all()
        }
        instruments.set_all("alerts", instruments.alerts, counts)


async def collect_forever(client: Client, engine: AsyncEngine, instruments: Instruments, every: timedelta) -> None:
    """Refresh the gauges until cancelled; a failed refresh is logged (its kind only) and retried next time."""
    while True:
        try:
            await collect(client, engine, instruments)
        except Exception as error:  # a metric must never stop the worker
            log.warning("metrics refresh failed: %s", type(error).__name__)
        await asyncio.sleep(every.total_seconds())


class ActivityMetrics(Interceptor):
    """Observes activities without touching them: failures by activity, and trigger → IAM confirmation."""

    def __init__(self, instruments: Instruments) -> None:
        self.instruments = instruments

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ObservedActivity(next, self.instruments)


class _ObservedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, instruments: Instruments) -> None:
        super().__init__(next)
        self.instruments = instruments

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        try:
            result = await super().execute_activity(input)
        except Exception:
            self.instruments.activity_failures.add(1, {"activity": name})
            raise
        triggered = getattr(input.args[0], "at", None) if name == CONVERGE_ACCESS and input.args else None
        if isinstance(triggered, datetime):
            elapsed = (datetime.now(UTC) - triggered).total_seconds()
            self.instruments.access_latency.record(max(elapsed, 0.0))
        return result


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the Temporal context the SDK attaches."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("temporal_workflow", "temporal_activity"):
            if isinstance(getattr(record, key, None), dict):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # The HTTP clients log every request's URL at INFO: a SCIM lookup's URL holds its filter, the
    # engineer's email. Activities log what they did, once each; the clients only their warnings.
    for chatty in QUIET_LOGGERS:
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


QUIET_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore")


def tracing_interceptor(service: str = "engagement-worker") -> TracingInterceptor:
    """Temporal's OpenTelemetry interceptor (client and worker): spans for workflows, activities,
    updates and queries. Spans go to the global tracer provider; with ``OTEL_EXPORTER_OTLP_ENDPOINT``
    set and none configured, an OTLP/HTTP exporter is installed, naming ``service``. A workflow gets
    its spans even when whoever started it traced nothing (the trace then begins at the workflow)."""
    import os

    from opentelemetry import trace
    from temporalio.contrib.opentelemetry import TracingInterceptor

    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not _has_sdk_provider(trace.get_tracer_provider()):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    return TracingInterceptor(always_create_workflow_spans=True)


def flush_traces(within: timedelta = timedelta(seconds=5)) -> None:
    """Export the spans still buffered (a short-lived process leaves with ``os._exit``, before the
    provider's own exit hook could). Nothing to do when tracing was never set up."""
    import sys

    if "opentelemetry.trace" not in sys.modules:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if _has_sdk_provider(provider) and callable(flush):
        flush(int(within.total_seconds() * 1000))


def _has_sdk_provider(provider: object) -> bool:
    return type(provider).__module__.startswith("opentelemetry.sdk")
