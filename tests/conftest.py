"""Real peers for every test: PostgreSQL over asyncpg, the scim2-server SCIM service on loopback,
and Temporal's time-skipping test server, all from the project's own dependencies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from hypothesis import settings as hypothesis_settings
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore, async_url, create_engine, migrate, start_embedded_postgres
from adapters.email import EmailSender, SendGridSender
from adapters.scim import ScimDirectory
from tests.helpers import Harness
from tests.scim_peers.servers import PEERS, Peer, start_peer
from tests.sendgrid_peer import SendGridPeer

# Property tests that leave the number of examples to the profile: "quick" when pytest is run by hand
# (the unit tier stays a few seconds long), "thorough" in the test command (scripts/test.sh) and so in
# CI. Tests tuned to a live server set their own numbers.
hypothesis_settings.register_profile("quick", max_examples=40)
hypothesis_settings.register_profile("thorough", max_examples=300)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

BIN = Path(sys.executable).parent
LOCAL_POSTGRES = "postgresql://127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files (a module that sets ``RUN_EARLY = True``) come first, so that the test
    command's two processes (``--dist loadfile``, files handed out in this order) start them at once
    and share out the short ones after, instead of ending on one long file alone."""
    items.sort(key=lambda item: not getattr(getattr(item, "module", None), "RUN_EARLY", False))


async def _reachable(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@pytest_asyncio.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh database for this run, on TEST_DATABASE_URL, the local server, or an embedded one."""
    admin = os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES)
    if not await _reachable(admin):
        admin = start_embedded_postgres(tmp_path_factory.mktemp("pgdata"))
    admin = admin.replace("postgresql+asyncpg://", "postgresql://")
    name = f"engagements_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base, _, query = admin.partition("?")
    url = async_url(base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else ""))
    await migrate(url)
    yield url
    conn = await asyncpg.connect(admin)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@pytest_asyncio.fixture(scope="session")
async def store(database_url: str) -> AsyncIterator[EngagementStore]:
    engine = create_engine(database_url)
    yield EngagementStore(engine)
    await engine.dispose()


class ScimServer:
    """The real scim2-server on loopback; each test takes a tenant of its own."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.port = free_port()
        self.extra_args = extra_args if extra_args is not None else ["--dynamic-tenants"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "scim2-server"), "--port", str(self.port), *self.extra_args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_for(self.port)

    @staticmethod
    def wait_for(port: int, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"no SCIM server listening on port {port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def tenant_url(self, tenant: str) -> str:
        return f"http://127.0.0.1:{self.port}/{tenant}"


@pytest.fixture(scope="session")
def scim_server() -> Iterator[ScimServer]:
    server = ScimServer()
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def tenant(scim_server: ScimServer) -> AsyncIterator[ScimDirectory]:
    """A fresh tenant of the SCIM server, as the client's IAM owner sees it (groups pre-created)."""
    directory = ScimDirectory(scim_server.tenant_url(f"t{uuid.uuid4().hex[:12]}"))
    yield directory
    await directory.close()


async def _time_skipping() -> WorkflowEnvironment:
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    environment.sleep = _resuming_sleep(environment)  # type: ignore[method-assign,assignment]  # see below
    return environment


def _resuming_sleep(environment: WorkflowEnvironment) -> Callable[[timedelta | float], Coroutine[Any, Any, None]]:
    """``env.sleep`` that reaches the same moment when the test server's RPC gives out midway.

    On a loaded machine a long skip (60 days of timers) can outlast the sleep RPC ("Timeout expired",
    an h2 error): the server keeps the time it reached, so the rest is slept from there, never twice."""
    sleep = environment.sleep

    async def resuming(duration: timedelta | float) -> None:
        target = await environment.get_current_time() + (
            duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
        )
        for _ in range(20):
            remaining = target - await environment.get_current_time()
            if remaining <= timedelta(0):
                return
            try:
                await sleep(remaining)
                return
            except RPCError as error:
                if error.status not in (
                    RPCStatusCode.CANCELLED,
                    RPCStatusCode.DEADLINE_EXCEEDED,
                    RPCStatusCode.UNAVAILABLE,
                ):
                    raise
        raise AssertionError(f"the test server could not skip to {target}")

    return resuming


@pytest_asyncio.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server for each test file. Its clock is one for everything on it: a file's
    leftovers (a workflow task or query the server still counts as in flight after its worker
    stopped) cannot hold the clock of another file's tests, whatever order or process runs them."""
    environment = await _time_skipping()
    yield environment
    await environment.shutdown()


@pytest.fixture
def mailer(request: pytest.FixtureRequest) -> EmailSender | None:
    """How the harness sends email: the outbox folder (None), or the product's SendGrid sender to the
    ``peer`` when the test module sets ``MAIL_THROUGH_SENDGRID = True``."""
    if not getattr(request.module, "MAIL_THROUGH_SENDGRID", False):
        return None
    peer: SendGridPeer = request.getfixturevalue("peer")
    return SendGridSender(peer.api_key, "eo@firm.example", "Engagement Office", host=peer.host)


@pytest_asyncio.fixture
async def harness(
    env: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path, mailer: EmailSender | None
) -> AsyncIterator[Harness]:
    async with Harness.running(env.client, store, tenant, tmp_path, mailer=mailer) as running:
        yield running


class PeerFarm:
    """The SCIM peers of the conformance suite, each started on first use and kept for the session."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.peers: dict[str, Peer] = {}

    def get(self, name: str) -> Peer:
        if name not in self.peers:
            self.peers[name] = start_peer(name, self.work_dir)
        return self.peers[name]

    def stop(self) -> None:
        for peer in self.peers.values():
            peer.stop()


@pytest.fixture(scope="session")
def peer_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerFarm]:
    farm = PeerFarm(tmp_path_factory.mktemp("scim-peers"))
    yield farm
    farm.stop()


@pytest.fixture(params=PEERS)
def scim_peer(request: pytest.FixtureRequest, peer_farm: PeerFarm) -> Peer:
    """Each SCIM peer in turn (a test parametrized over every server implementation)."""
    return peer_farm.get(str(request.param))


@pytest.fixture(params=PEERS)
def fresh_scim_peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Peer]:
    """Each SCIM peer in turn, started for this test alone (its state starts empty)."""
    peer = start_peer(str(request.param), tmp_path)
    yield peer
    peer.stop()


@pytest.fixture
def peer() -> Iterator[SendGridPeer]:
    """SendGrid's v3 API on loopback, scripted by the test."""
    with SendGridPeer() as running:
        yield running
