"""``record_effects``: queued records written by one activity, in order, each as its own activity
would write it (keyed by its effect, so a retry writes nothing twice)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from temporalio import activity

from activities.payloads import RecordBatch, RecordsWritten

CUT_AT = 0.8
"""A record after the first is cut off when it is still being written at this share of the attempt's
time: the batch returns what it wrote before the attempt times out, and that record leads the next
batch, where a write that hangs fails alone and is parked by its own name, not the first record's."""


async def write_in_order(
    batch: RecordBatch, writers: Mapping[type[Any], Callable[[Any], Awaitable[None]]]
) -> RecordsWritten:
    """Fails only when the first record cannot be written; a later failure ends the batch early, and
    that record leads the next one. Past half its time the batch ends early too, so a slow database
    makes batches shorter, never an attempt that always times out."""
    seconds = (activity.info().start_to_close_timeout or timedelta(seconds=30)).total_seconds()
    started = time.monotonic()
    for written, step in enumerate(batch.records):
        if written and time.monotonic() > started + seconds / 2:
            return RecordsWritten(written=written)
        record = step.parsed()
        try:
            if not written:
                await writers[type(record)](record)
                continue
            async with asyncio.timeout(started + seconds * CUT_AT - time.monotonic()):
                await writers[type(record)](record)
        except Exception as error:  # a cut-off write is a TimeoutError; were it committed after all, the
            # next batch writes it again under its effect's key, which changes nothing
            if not written:
                raise
            activity.logger.warning(
                "wrote %d of %d records; the next failed (%s)", written, len(batch.records), type(error).__name__
            )
            return RecordsWritten(written=written)
    return RecordsWritten(written=len(batch.records))
