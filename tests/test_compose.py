"""docker-compose.yml cannot run here (no Docker engine): it is validated instead, against the
compose-spec JSON schema (as check-jsonschema vendors it) and for the cross-references Compose itself
would only find at `up` time. The worker's healthcheck runs for real against the dev server."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from adapters.search_attributes import declared
from deploy.worker_healthcheck import polling_here
from settings import Settings
from tests.devserver import dev_server, requires_temporal

__all__ = ["dev_server"]

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = ("worker", "webhook", "codec-server", "certification", "provider-webhook")
NOT_SERVICES = {"starter.py", "demo.py"}
"""Entry points a person runs (the CLI, the demo), not services."""
SEARCH_ATTRIBUTES = declared()  # the one list (adapters/search_attributes.py)


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema: dict[str, Any] = json.loads(vendored.read_text(encoding="utf-8"))
    return schema


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec["condition"] for name, spec in deps.items()}


def one_shot_jobs() -> set[str]:
    """Services others wait for to exit 0 (schema and setup jobs): judged by exit status, not health."""
    return {name for s in SERVICES.values() for name, cond in depends_on(s).items() if cond.endswith("successfully")}


def test_validates_against_the_compose_spec_schema() -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    jsonschema.validate(COMPOSE, schema)


def test_the_schema_check_catches_a_mistake() -> None:
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["worker"]["depends_on"]["app-db"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema())


def test_every_dependency_exists_and_waits_on_something_that_can_report_it() -> None:
    for name, service in SERVICES.items():
        for dep, condition in depends_on(service).items():
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"


def test_every_long_running_service_has_a_healthcheck() -> None:
    jobs = one_shot_jobs()
    assert jobs == {"temporal-schema", "temporal-setup"}
    for name, service in SERVICES.items():
        if name in jobs:
            assert str(service.get("restart", "")).startswith("on-failure"), f"{name} is a job: retry, then stop"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_images_are_pinned_to_versions() -> None:
    for name, service in SERVICES.items():
        if "build" in service:
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+(\.\d+)+", image), f"{name}: {image} is not pinned to a version"
    versions = {SERVICES[s]["image"].split(":")[1] for s in ("temporal", "temporal-schema", "temporal-setup")}
    assert len(versions) == 1, "server and admin-tools move together (the schema follows the server)"
    assert "auto-setup" not in (ROOT / "docker-compose.yml").read_text()


def test_application_environment_names_real_settings() -> None:
    """A typo in a variable name would be silently ignored by pydantic-settings: catch it here."""
    fields = {name.upper() for name in Settings.model_fields}
    for name in APP_SERVICES:
        env = SERVICES[name]["environment"]
        unknown = {key for key in env if key not in fields}
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"
    worker = SERVICES["worker"]["environment"]
    needed = {"TEMPORAL_ADDRESS", "DATABASE_URL", "MIGRATION_DATABASE_URL", "PAYLOAD_KEYS", "PAYLOAD_KEY_ID", "RUN_DIR"}
    assert needed <= set(worker)
    assert "${PAYLOAD_KEYS:?" in worker["PAYLOAD_KEYS"], "no silent start without keys"
    assert "SENDGRID_API_KEY" not in worker, "any value, even empty, means send through SendGrid"


def test_every_entry_point_runs_as_a_service_that_is_probed_where_it_listens() -> None:
    """Each script with a ``__main__`` (but the CLI and the demo) is the command of a service, whose
    published port and healthcheck are the port the service's settings make it listen on."""
    scripts = {p.name for p in ROOT.glob("*.py") if "__main__" in p.read_text(encoding="utf-8")} - NOT_SERVICES
    commands = {name: service["command"] for name, service in SERVICES.items() if "build" in service}
    served = {command[1] for command in commands.values() if command[0] == "python"}
    assert scripts == served, f"no service runs {scripts - served}; a service runs a missing {served - scripts}"
    for name in APP_SERVICES:
        service = SERVICES[name]
        ports = [value for key, value in service["environment"].items() if key.endswith("_PORT")]
        if name == "worker":
            continue  # it serves metrics, scraped by Prometheus, and reports health through Temporal
        assert len(ports) == 1, f"{name} should set the one port it listens on"
        assert any(p.endswith(f":{ports[0]}") for p in service["ports"]), f"{name} publishes another port"
        probe = " ".join(service["healthcheck"]["test"])
        assert f":{ports[0]}/healthz" in probe, f"{name}'s healthcheck asks another port"


def test_the_app_works_as_a_data_role_and_migrates_as_the_owner() -> None:
    roles = (ROOT / "deploy/app-db/10-roles.sh").read_text()
    worker = SERVICES["worker"]["environment"]
    assert worker["DATABASE_URL"].startswith("postgresql+asyncpg://engagements_app:")
    assert worker["MIGRATION_DATABASE_URL"].startswith("postgresql+asyncpg://engagements_owner:")
    assert SERVICES["webhook"]["environment"]["DATABASE_URL"] == worker["DATABASE_URL"]
    assert "CREATE ROLE engagements_owner" in roles and "CREATE ROLE engagements_app" in roles
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO engagements_app" in roles
    assert "./deploy/app-db:/docker-entrypoint-initdb.d:ro" in SERVICES["app-db"]["volumes"]


def test_mounted_scripts_exist_and_register_the_search_attributes() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        entrypoint = service.get("entrypoint", [])
        for arg in entrypoint[1:] if isinstance(entrypoint, list) else []:
            if arg.startswith("/deploy/"):
                assert (ROOT / "deploy/temporal" / arg.removeprefix("/deploy/")).exists()
    registered = dict(re.findall(r"^register (\w+) (\w+)$", (ROOT / "deploy/temporal/register.sh").read_text(), re.M))
    assert registered == SEARCH_ATTRIBUTES


def test_the_ui_reaches_the_codec_server_from_the_browser() -> None:
    ui = SERVICES["temporal-ui"]["environment"]
    codec = SERVICES["codec-server"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8081"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true", "the admin's codec session goes with each call"
    assert "127.0.0.1:8081:8081" in codec["ports"], "published on loopback only"
    ui_port = SERVICES["temporal-ui"]["ports"][0].split(":")[0]
    assert f"http://localhost:{ui_port}" in codec["environment"]["CODEC_CORS_ORIGINS"].split(",")
    assert codec["environment"]["CODEC_AUTH_TOKEN"].startswith("${CODEC_AUTH_TOKEN:?")


@workflow.defn(name="TestComposeIdle")
class Idle:
    @workflow.run
    async def run(self) -> None:
        return None


@requires_temporal
async def test_worker_healthcheck_sees_this_hosts_poller(dev_server: WorkflowEnvironment) -> None:
    client = dev_server.client
    queue = f"health-{uuid.uuid4().hex[:8]}"
    host = socket.gethostname()
    assert not await polling_here(client, queue, host), "nobody polls yet"
    async with Worker(client, task_queue=queue, workflows=[Idle], workflow_runner=UnsandboxedWorkflowRunner()):
        for _ in range(100):  # bounded: a poller is listed once the worker's first long-poll arrives
            if await polling_here(client, queue, host):
                break
            await asyncio.sleep(0.1)
        assert await polling_here(client, queue, host)
        assert not await polling_here(client, queue, "another-host")
