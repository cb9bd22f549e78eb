"""``record_effects``: queued records written by one activity, in order, each as its own activity
would write it (keyed by its effect, so a retry writes nothing twice)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from temporalio import activity

from activities.payloads import RecordBatch, RecordsWritten


async def write_in_order(
    batch: RecordBatch, writers: Mapping[type[Any], Callable[[Any], Awaitable[None]]]
) -> RecordsWritten:
    """Fails only when the first record cannot be written; a later failure ends the batch early, and
    that record leads the next one. Past half its time the batch ends early too, so a slow database
    makes batches shorter, never an attempt that always times out."""
    timeout = activity.info().start_to_close_timeout or timedelta(seconds=30)
    stop_after = time.monotonic() + timeout.total_seconds() / 2
    for written, step in enumerate(batch.records):
        if written and time.monotonic() > stop_after:
            return RecordsWritten(written=written)
        record = step.parsed()
        try:
            await writers[type(record)](record)
        except Exception as error:
            if not written:
                raise
            activity.logger.warning(
                "wrote %d of %d records; the next failed (%s)", written, len(batch.records), type(error).__name__
            )
            return RecordsWritten(written=written)
    return RecordsWritten(written=len(batch.records))
