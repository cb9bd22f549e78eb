"""A loopback TCP proxy that a test can cut and restore: an IAM outage without losing its state
(the SCIM server keeps its users in memory, so stopping it for real would erase the evidence)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.db import create_engine
from tests.conftest import free_port


class TcpProxy:
    def __init__(self, target_port: int, listen_port: int) -> None:
        self.target_port = target_port
        self.port = listen_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        if self._server is not None:
            return  # already serving
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def down(self) -> None:
        """Refuse new connections and cut the open ones, as a server that went away."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update({client_writer, upstream_writer})
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        finally:
            self._writers.difference_update({client_writer, upstream_writer})

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


@contextlib.asynccontextmanager
async def database_behind_proxy(database_url: str) -> AsyncIterator[tuple[TcpProxy, AsyncEngine]]:
    """An engine that reaches the test database through a proxy the test can cut (skipped where the
    database is not reached over loopback TCP)."""
    parts = urlsplit(database_url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        pytest.skip("the database is not reached over loopback TCP here: no proxy to cut")
    proxy = TcpProxy(parts.port, free_port())
    await proxy.up()
    engine = create_engine(urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}")))
    try:
        yield proxy, engine
    finally:
        await proxy.down()
        await engine.dispose()
