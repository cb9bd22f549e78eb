"""Traces by setting (issue 11): with ``TRACING_ENABLED`` and an OTLP/HTTP endpoint, the CLI and the
real worker process export the spans of an engagement (its start, its updates, its workflow and its
activities) to a collector on loopback that speaks OTLP/HTTP's protobuf wire format. The worker
continues the trace the CLI began, an activity's span belongs to the trace of the workflow that
scheduled it, and no span carries a person's name or address."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from adapters.http_endpoint import in_background
from adapters.scim import ScimDirectory
from tests.conftest import free_port
from tests.devserver import Cli, WorkerProcess, address, dev_server, requires_temporal
from tests.sample_spec import ALL_GROUPS, spec_data

__all__ = ["dev_server"]

pytestmark = requires_temporal

WITHIN = 60.0
PROTOBUF = "application/x-protobuf"


@dataclass
class Collector:
    """What an OpenTelemetry collector received on ``/v1/traces``."""

    url: str
    spans: list[Span] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def named(self, prefix: str) -> list[Span]:
        return [span for span in self.spans if span.name.startswith(prefix)]

    async def until(self, *prefixes: str) -> None:
        """Wait (bounded) until a span of every prefix has arrived."""
        try:
            async with asyncio.timeout(WITHIN):
                while not all(self.named(prefix) for prefix in prefixes):
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            missing = [prefix for prefix in prefixes if not self.named(prefix)]
            names = sorted({span.name for span in self.spans})
            raise AssertionError(f"no span for {missing} within {WITHIN} s; received: {names}") from None


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[Collector]:
    port = free_port()
    received = Collector(f"http://127.0.0.1:{port}")

    async def traces(request: Request) -> Response:
        if request.headers.get("content-type") != PROTOBUF:
            return Response(status_code=415)
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                received.spans.extend(scope.spans)
        received.arrived.set()
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type=PROTOBUF)

    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    async with in_background(server):
        yield received


def text_of(span: Span) -> str:
    """Everything a span says, for the personal-data check: its name, attributes and events."""
    parts = [span.name, *(f"{a.key}={a.value}" for a in span.attributes)]
    parts += [f"{e.name} {list(e.attributes)}" for e in span.events]
    return "\n".join(parts)


async def test_the_worker_exports_linked_spans_without_personal_data(
    dev_server: WorkflowEnvironment, database_url: str, tenant: ScimDirectory, tmp_path: Path
) -> None:
    for group in ALL_GROUPS:
        await tenant.create_group(group)
    spec = spec_data(tenant.base_url)
    async with collector() as otel:
        cli = Cli(address(dev_server), database_url, tmp_path)
        cli.extra |= {
            "TRACING_ENABLED": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otel.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export every 100 ms rather than every 5 s
        }
        async with WorkerProcess.running(cli):
            await cli.ok("start", str(cli.write_spec(spec)))
            await cli.ok("nda-signed", spec["contract_id"], "--signed-by", "Sam Signer")
            await otel.until(
                "StartWorkflow:EngagementWorkflow",
                "StartWorkflowUpdate:",
                "RunWorkflow:EngagementWorkflow",
                "ValidateUpdate:",
                "HandleUpdate:",
                "StartActivity:send_email",
                "RunActivity:send_email",
                "RunActivity:converge_access",
            )

    [started] = otel.named("StartWorkflow:EngagementWorkflow")  # by the CLI's `start`
    workflow_traces = {span.trace_id for span in otel.named("RunWorkflow:EngagementWorkflow")}
    assert started.trace_id in workflow_traces, "the worker continues the trace the CLI began"
    activities = otel.named("RunActivity:")
    assert activities and all(span.trace_id in workflow_traces for span in activities), (
        "every activity's span is in the trace of the engagement that scheduled it"
    )
    contacts = [*spec["client"]["contacts"].values(), spec["firm_lead"], *spec["engineers"]]
    people = [contact[key] for contact in contacts for key in ("name", "email")]
    said = "\n".join(text_of(span) for span in otel.spans)
    leaked = [person for person in people if person in said]
    assert not leaked, f"personal data in spans: {leaked}"
