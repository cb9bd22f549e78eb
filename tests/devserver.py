"""The Temporal dev server (the real one, not the time-skipping test server), the real worker as a
process, and the CLI as a person runs it: shared by the tests that drive ``python starter.py``.

Import the fixtures into a test module (``from tests.devserver import dev_server``) to use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters import search_attributes

ROOT = Path(__file__).resolve().parent.parent
TEMPORAL = Path(sys.executable).parent / "temporal"
CLI_TIMEOUT = 30.0
"""No CLI call may take longer than this; a hung one fails the test instead of hanging it."""

requires_temporal = pytest.mark.skipif(
    not TEMPORAL.exists(), reason=f"the Temporal CLI (dev server) is not installed at {TEMPORAL}"
)


@pytest_asyncio.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server on a free loopback port, for this test module."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL), data_converter=pydantic_data_converter, ui=False
    )
    # As ops do on any cluster (`starter.py setup-search-attributes`): admins find engagements by them.
    await search_attributes.register(environment.client, environment.client.namespace)
    try:
        yield environment
    finally:
        await environment.shutdown()


def address(environment: WorkflowEnvironment) -> str:
    return environment.client.service_client.config.target_host


@dataclass(frozen=True)
class Outcome:
    """What one CLI run left: its exit status and what it printed."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"`{' '.join(self.args)}` exited {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"

    def json(self) -> Any:
        assert self.code == 0, str(self)
        return json.loads(self.stdout)


@dataclass
class Cli:
    """The environment a person (and the worker) would have: where Temporal is, which task queue,
    which database, which run folder."""

    temporal_address: str
    database_url: str
    run_dir: Path
    task_queue: str = field(default_factory=lambda: f"cli-{uuid.uuid4().hex[:10]}")
    extra: dict[str, str] = field(default_factory=dict)
    """More settings, over the ones above."""

    def env(self) -> dict[str, str]:
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TEMPORAL_", "SENDGRID_", "SCIM_", "PAYLOAD_", "CODEC_"))
        }
        return {
            **inherited,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TASK_QUEUE": self.task_queue,
            "DATABASE_URL": self.database_url,
            "RUN_DIR": str(self.run_dir),
            "ENGAGEMENT_ACTOR": "ops-tester",
            "ALLOW_SHORT_DURATIONS": "true",  # the end-to-end spec lives seconds, not months
            "PYTHONUNBUFFERED": "1",
            **self.extra,
        }

    async def run(self, *args: str, within: float = CLI_TIMEOUT) -> Outcome:
        """``python starter.py ARGS``, from the project folder, bounded by a timeout."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "starter.py",
            *args,
            cwd=ROOT,
            env=self.env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), within)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"`starter.py {' '.join(args)}` did not finish in {within} s") from None
        assert process.returncode is not None
        return Outcome(("starter.py", *args), process.returncode, stdout.decode(), stderr.decode())

    async def ok(self, *args: str) -> Outcome:
        outcome = await self.run(*args)
        assert outcome.code == 0, str(outcome)
        return outcome

    async def status(self, engagement: str) -> dict[str, Any]:
        view: dict[str, Any] = (await self.run("status", engagement, "--json")).json()
        return view

    async def poll(
        self, engagement: str, done: Callable[[dict[str, Any]], bool], what: str, within: float = 60.0
    ) -> dict[str, Any]:
        """Read ``status --json`` every half second until ``done`` holds, for at most ``within`` s."""
        deadline = time.monotonic() + within
        while True:
            view = await self.status(engagement)
            if done(view):
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} after {within} s: {json.dumps(view, indent=1)}")
            await asyncio.sleep(0.5)

    def write_spec(self, data: dict[str, Any], name: str = "spec.yaml") -> Path:
        path = self.run_dir / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path


class WorkerProcess:
    """``python worker.py`` as ops run it; stopped with SIGTERM like a service manager would."""

    def __init__(self, cli: Cli, program: tuple[str, ...] = ("worker.py",)) -> None:
        self.cli = cli
        self.program = program
        """What the interpreter runs: the product's worker, or (the benchmarks) a bare one."""
        self.log = cli.run_dir / f"worker-{cli.task_queue}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.program,
                cwd=ROOT,
                env=self.cli.env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        # It is ready once it says it polls; fail early (with its log) if it dies instead.
        deadline = time.monotonic() + CLI_TIMEOUT
        while "worker polling task queue" not in self.output():
            if self.process.returncode is not None:
                raise AssertionError(f"the worker exited {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not start in {CLI_TIMEOUT} s:\n{self.output()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 0.1)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    async def stop(self, within: float = CLI_TIMEOUT) -> int:
        """SIGTERM, then wait for it to drain and exit; returns its exit status."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), within)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError(f"the worker ignored SIGTERM for {within} s:\n{self.output()}") from None
        assert self.process.returncode is not None
        return self.process.returncode

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, cli: Cli, program: tuple[str, ...] = ("worker.py",)) -> AsyncIterator[WorkerProcess]:
        """A worker for the block; killed on the way out if the block did not stop it itself."""
        worker = cls(cli, program)
        try:
            await worker.start()
            yield worker
        finally:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.kill()
                await worker.process.wait()


async def gather_limited(calls: list[Callable[[], Awaitable[Outcome]]], limit: int = 4) -> list[Outcome]:
    """Run CLI calls a few at a time: independent processes, so order does not matter."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))
