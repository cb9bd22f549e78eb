"""Counting PostgreSQL round trips: a loopback proxy between the product and the database that counts,
per connection, every time the client speaks after the server has (one request and its answer).

Counted on the wire, so it sees everything the driver does: BEGIN and COMMIT, a pool's pre-ping,
asyncpg's statement preparation, the statements themselves. Used by ``python -m bench.lifecycle
--round-trips``; never while timing (the proxy runs in the bench's own event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit


class CountingProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self.round_trips = 0
        self.connections = 0

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self.connections += 1
        turn = ["server"]  # who spoke last on this connection

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, side: str) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await reader.read(65536):
                    if side == "client" and turn[0] == "server":
                        self.round_trips += 1
                    turn[0] = side
                    writer.write(data)
                    await writer.drain()
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                writer.close()

        await asyncio.gather(
            pipe(client_reader, upstream_writer, "client"), pipe(upstream_reader, client_writer, "server")
        )


@contextlib.asynccontextmanager
async def counted(url: str) -> AsyncIterator[tuple[str, CountingProxy]]:
    """The database URL through a counting proxy, and the proxy (read ``round_trips`` at the end)."""
    parts = urlsplit(url)
    proxy = CountingProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{proxy.port}"
    try:
        yield urlunsplit(parts._replace(netloc=netloc)), proxy
    finally:
        await proxy.stop()
