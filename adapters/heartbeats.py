"""Every activity that is given a heartbeat timeout heartbeats while it runs, without its own code
knowing: a worker that dies mid-activity is then noticed within that timeout, not after the whole
start-to-close timeout, so nothing queued behind the lost attempt waits a minute for it.

A cancellation that the heartbeats bring (a superseded IAM change) or a worker's shutdown never
cuts an attempt off midway: the attempt finishes the call it is making (``activity.is_cancelled()``
tells it it may stop early), and only then is it reported cancelled. A request cut off halfway can
leave a server reading a half-sent request, and an IAM change would be in an unknown state."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

BEATS_PER_TIMEOUT = 4
"""Heartbeats sent per heartbeat timeout: one late beat (a busy event loop) is not yet a timeout."""


class Heartbeats(Interceptor):
    """Heartbeats for every activity scheduled with a heartbeat timeout (the others are left alone)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Heartbeating(next)


class _Heartbeating(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        timeout = activity.info().heartbeat_timeout
        if timeout is None or not timeout or not activity.in_activity() or not _is_async(input):
            return await super().execute_activity(input)
        beating = asyncio.create_task(_beat(timeout.total_seconds() / BEATS_PER_TIMEOUT))
        attempt = asyncio.ensure_future(super().execute_activity(input))
        try:
            return await asyncio.shield(attempt)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):  # its own outcome no longer matters: it was cancelled
                await attempt
            raise
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


def _is_async(input: ExecuteActivityInput) -> bool:
    return asyncio.iscoroutinefunction(input.fn)


async def _beat(every: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every)
