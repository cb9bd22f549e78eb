"""The worker's SCIM directories stay bounded however many clients it serves: at most
``SCIM_MAX_CLIENTS`` open, the least recently used closed first, never one a caller still holds.
Against the real scim2-server, each tenant a distinct client endpoint."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from adapters.scim import DirectoryPool, ScimDirectory
from tests.conftest import ScimServer


def endpoint(scim_server: ScimServer) -> str:
    return scim_server.tenant_url(f"pool{uuid.uuid4().hex[:10]}")


async def closed(directories: list[ScimDirectory]) -> list[bool]:
    """Which directories are closed, once the pool's pending closes have run."""
    for _ in range(100):
        await asyncio.sleep(0.01)
        if sum(not d.http.is_open for d in directories) == len(directories) - 3:
            break
    return [not d.http.is_open for d in directories]


async def test_many_client_endpoints_keep_at_most_the_bound_open(scim_server: ScimServer) -> None:
    pool = DirectoryPool({}, max_clients=3)
    used: list[ScimDirectory] = []
    try:
        for _ in range(20):
            async with pool.lease(pool.directory(endpoint(scim_server), None)) as directory:
                await directory.create_group("repo-read")  # a real request: its HTTP client is open
                assert directory.http.is_open
                used.append(directory)
            assert len(pool) <= 3
        assert await closed(used) == [True] * 17 + [False] * 3  # the least recently used went first
    finally:
        await pool.close()
    assert not any(d.http.is_open for d in used)


async def test_the_least_recently_used_goes_first(scim_server: ScimServer) -> None:
    pool = DirectoryPool({}, max_clients=2)
    first, second, third = (endpoint(scim_server) for _ in range(3))
    try:
        a, b = pool.directory(first, None), pool.directory(second, None)
        assert pool.directory(first, None) is a  # the same client's directory, now the most recently used
        pool.directory(third, None)
        assert pool.directory(first, None) is a and pool.directory(second, None) is not b
        assert len(pool) == 2
    finally:
        await pool.close()


async def test_a_directory_in_use_is_closed_only_when_its_caller_lets_go(scim_server: ScimServer) -> None:
    pool = DirectoryPool({}, max_clients=2)
    first, second, third = (endpoint(scim_server) for _ in range(3))
    try:
        async with pool.lease(pool.directory(first, None)) as a:
            await a.create_group("ticketing")
            for other in (second, third):  # the first becomes the least recently used, and is evicted
                async with pool.lease(pool.directory(other, None)) as directory:
                    await directory.create_group("ticketing")
            assert a.http.is_open and len(pool) == 3
            assert await a.group_id("ticketing")  # evicted meanwhile, but held: it keeps working
        assert not a.http.is_open and len(pool) == 2  # closed when its caller let go
    finally:
        await pool.close()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_each_open_client_costs_little_memory(scim_server: ScimServer) -> None:
    """The clients share one TLS context: a hundred open clients, each after a real request, add a few
    MB to the process, not the 0.8 MB apiece a CA bundle loaded per client would."""
    pool = DirectoryPool({}, max_clients=1000)
    try:
        warm = pool.directory(endpoint(scim_server), None)
        await warm.create_group("ticketing")
        before = rss_mb()
        for _ in range(100):
            await pool.directory(endpoint(scim_server), None).create_group("ticketing")
        grown = rss_mb() - before
        assert len(pool) == 101 and grown < 30, f"{grown:.1f} MB for 100 clients"
    finally:
        await pool.close()
