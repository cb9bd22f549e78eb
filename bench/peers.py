"""The real peers of one bench run: a fresh PostgreSQL database, the scim2-server on loopback and a
Temporal dev server; and the entry point every bench module leaves through.

The database is found as tests/conftest.py finds it (TEST_DATABASE_URL, else the local server on
127.0.0.1:5432, else an embedded one), created for this run, migrated, and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from adapters import search_attributes
from adapters.db import async_url, migrate, start_embedded_postgres
from tests.conftest import LOCAL_POSTGRES, ScimServer
from tests.devserver import TEMPORAL


async def _reachable(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _plain(url: str) -> str:
    """asyncpg wants postgresql://, SQLAlchemy postgresql+asyncpg://."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


@contextlib.asynccontextmanager
async def _admin_url() -> AsyncIterator[str]:
    admin = _plain(os.environ.get("TEST_DATABASE_URL", LOCAL_POSTGRES))
    if await _reachable(admin):
        yield admin
        return
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as folder:
        data_dir = Path(folder) / "pgdata"
        admin = _plain(start_embedded_postgres(data_dir))
        try:
            yield admin
        finally:
            # Stopped here, not at interpreter exit: the bench leaves through os._exit.
            import pgserver

            # pgserver re-exports get_server without __all__; the same instance start_embedded_postgres made.
            pgserver.get_server(data_dir.resolve()).cleanup()  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def fresh_database(prefix: str = "engagements_bench_") -> AsyncIterator[str]:
    """A migrated database of its own for this bench run (named ``prefix`` and a random suffix); its URL."""
    async with _admin_url() as admin:
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        try:
            base, _, query = admin.partition("?")
            url = async_url(base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else ""))
            await migrate(url)
            yield url
        finally:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


@contextlib.contextmanager
def scim_server() -> Iterator[ScimServer]:
    """`scim2-server --dynamic-tenants` on a free loopback port: each run takes a tenant of its own."""
    server = ScimServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def dev_server(database_file: Path | None = None) -> AsyncIterator[WorkflowEnvironment]:
    """`temporal server start-dev` from the venv on a free port, in memory or on a SQLite file (with
    the pragmas the README's embedded default uses), the product's search attributes registered."""
    pragmas = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_database_filename=str(database_file) if database_file is not None else None,
        dev_server_extra_args=pragmas if database_file is not None else [],
    )
    try:
        await search_attributes.register(env.client, env.client.namespace)
        yield env
    finally:
        await env.shutdown()


def emit(results: Any, out: Path | None) -> None:
    """Print the results as JSON, and write them to ``out`` when given."""
    text = json.dumps(results, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")


def measure_and_emit(
    measure: Callable[[argparse.Namespace], Coroutine[Any, Any, Any]], args: argparse.Namespace, log: logging.Logger
) -> NoReturn:
    """Run a bench's ``measure`` and print its results as JSON (written to ``args.out`` too, when set)."""

    async def main(args: argparse.Namespace) -> int:
        emit(await measure(args), args.out)
        return 0

    run(main, args, log)


def run(
    main: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], args: argparse.Namespace, log: logging.Logger
) -> NoReturn:
    """Run a bench's ``main`` and leave with its status. Only the bench's own progress is logged (the
    peers' clients log every request at INFO)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    try:
        status = asyncio.run(main(args))
    except KeyboardInterrupt:
        status = 130
    except Exception:
        log.exception("the benchmark failed")
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio/sdk-python#300: the interpreter can abort in teardown after using a Temporal client.
    os._exit(status)
