"""What every HTTP endpoint of ours does alike: read a body within a bound before anything parses
it, answer the health check, and run as a process that exits cleanly after Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any, NoReturn

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    import uvicorn


class BodyTooLarge(Exception):
    """The body is over the endpoint's limit (declared or streamed): answer 413 and read no further."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as its declared or streamed size passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def json_body(body: bytes) -> Any:
    """The body's JSON, or ValueError with a message fit for the sender: not JSON (also NaN and
    Infinity, non-UTF-8 bytes, numbers of thousands of digits) or nesting too deeply to parse."""
    try:
        return json.loads(body, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("the body nests too deeply") from None
    except ValueError:
        raise ValueError("the body is not JSON") from None


@contextlib.asynccontextmanager
async def in_background(server: uvicorn.Server) -> AsyncIterator[None]:
    """Serve for the block, beside other work in this process (the demo's way), from the moment the
    server listens; drained on the way out."""
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # the server says when it listens
            if task.done():
                task.result()
                raise RuntimeError("the server stopped before it listened")
            await asyncio.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        await task


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


HEALTH = Route("/healthz", _health)
"""``GET /healthz``: 200 ``ok`` while the process serves (what compose and the load balancer probe)."""


def run(main: Coroutine[Any, Any, None]) -> NoReturn:
    """Run an entry point's ``main()`` to its end (uvicorn and the worker drain on SIGINT/SIGTERM), then exit."""
    asyncio.run(main)
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio/sdk-python#300: the interpreter can abort in teardown after a clean run.
    os._exit(0)
