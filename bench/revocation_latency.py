"""Trigger -> first IAM call of an emergency revocation, on the Temporal dev server, while another part
is failing: the email provider down (every send answered 503), or our own PostgreSQL cut.

    python -m bench.revocation_latency [--trials 20] [--out results.json]

The trigger is the moment the client sends ``revoke-now``; the first IAM call is the first request
that reaches the SCIM server afterwards, timestamped by a loopback proxy in front of it. Each trial
revokes everyone, waits until the IAM holds nothing, restores access and waits until the grants are
back. Figures are medians and 95th percentiles of real time on this machine (note its load).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore, create_engine
from adapters.email import SendGridSender
from adapters.scim import ScimDirectory
from bench.peers import fresh_database, scim_server
from domain.commands import RestoreAccess, RevokeAccessNow
from domain.vocabulary import Phase
from tests.conftest import free_port
from tests.helpers import Harness
from tests.sendgrid_peer import SendGridPeer
from tests.tcp_proxy import TcpProxy

BIN = Path(sys.executable).parent
ENGINEERS = ("alice@firm.example", "bob@firm.example", "carol@firm.example")


class StampingProxy(TcpProxy):
    """A loopback proxy that notes when each chunk from a client reaches the server (a request)."""

    def __init__(self, target_port: int, listen_port: int) -> None:
        super().__init__(target_port, listen_port)
        self.stamps: list[float] = []

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        stamping = _Stamping(client_reader, self.stamps)
        await super()._serve(stamping, client_writer)  # type: ignore[arg-type]


class _Stamping:
    def __init__(self, reader: asyncio.StreamReader, stamps: list[float]) -> None:
        self._reader = reader
        self._stamps = stamps

    async def read(self, n: int) -> bytes:
        data = await self._reader.read(n)
        if data:
            self._stamps.append(time.monotonic())
        return data


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError("a trial did not converge in time")
        await asyncio.sleep(0.02)


def _through(port: int, url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{port}"))


@contextlib.asynccontextmanager
async def _scenario(
    name: str, url: str
) -> AsyncIterator[tuple[EngagementStore, Any, Callable[[bool], Awaitable[None]]]]:
    """The store the worker uses, the mailer, and a switch that breaks (True) or mends (False) the part."""
    if name == "email_down":
        with SendGridPeer() as peer:
            engine = create_engine(url)

            async def email(broken: bool) -> None:
                peer.recover()
                if broken:
                    peer.fail_next(503, count=1_000_000)

            try:
                yield (
                    EngagementStore(engine),
                    SendGridSender(peer.api_key, "eo@firm.example", "EO", host=peer.host),
                    email,
                )
            finally:
                await engine.dispose()
        return
    parts = urlsplit(url)
    assert parts.port is not None
    proxy = TcpProxy(parts.port, free_port())
    await proxy.up()
    engine = create_engine(_through(proxy.port, url))

    async def database(broken: bool) -> None:
        await (proxy.down() if broken else proxy.up())

    try:
        yield EngagementStore(engine), None, database
    finally:
        await proxy.down()
        await engine.dispose()


async def measure(name: str, trials: int) -> dict[str, Any]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=pydantic_data_converter, ui=False
    )
    latencies: list[float] = []
    try:
        async with fresh_database() as url, _scenario(name, url) as (store, mailer, break_it):
            with scim_server() as scim, tempfile.TemporaryDirectory() as tmp:
                proxy = StampingProxy(scim.port, free_port())
                await proxy.up()
                tenant = ScimDirectory(f"http://127.0.0.1:{proxy.port}/bench{os.getpid()}{name}")
                async with Harness.running(env.client, store, tenant, Path(tmp), mailer=mailer) as harness:
                    handle = await harness.start(harness.spec())
                    await harness.drive_to(handle, Phase.DELIVERY)
                    await break_it(True)
                    for _ in range(trials):
                        await break_it(True)
                        proxy.stamps.clear()
                        triggered = time.monotonic()
                        await harness.update(handle, RevokeAccessNow(actor="bench", reason="trial"))
                        try:
                            await _until(lambda: _all(harness, False))
                        except RuntimeError:
                            print(await harness._diagnosis(handle), file=sys.stderr)
                            print(len(latencies), "trials done", file=sys.stderr)
                            raise
                        first = min(s for s in proxy.stamps if s >= triggered)
                        latencies.append(first - triggered)
                        if name == "database_down":
                            await break_it(False)  # a grant needs the shared-identity lock: the database
                        await harness.update(handle, RestoreAccess(actor="bench"))
                        await _until(lambda: _all(harness, True))
                    await break_it(False)
                await tenant.close()
                await proxy.down()
    finally:
        await env.shutdown()
    ordered = sorted(latencies)
    return {
        "scenario": name,
        "trials": len(latencies),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def _all(harness: Harness, granted: bool) -> bool:
    for email in ENGINEERS:
        identity = await harness.iam(email)
        if bool(identity.groups) != granted:
            return False
    return True


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--scenarios", nargs="+", default=["email_down", "database_down"])
    args = parser.parse_args(argv)
    results = [await measure(name, args.trials) for name in args.scenarios]
    load = os.getloadavg()
    report = {"load_average": [round(x, 2) for x in load], "results": results}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    status = asyncio.run(main())
    sys.stdout.flush()
    os._exit(status)  # temporalio/sdk-python#300
