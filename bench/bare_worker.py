"""The bare side's worker, a process of its own as the product's ``worker.py`` is: the baseline
workflows and the no-op activity on TASK_QUEUE at TEMPORAL_ADDRESS, with the same data converter and
the same worker settings (WORKER_* as in settings.py). SIGTERM stops it.

    TEMPORAL_ADDRESS=127.0.0.1:7233 TASK_QUEUE=bare python -m bench.bare_worker
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from bench.baseline import BASELINE_WORKFLOWS, noop
from settings import Settings

log = logging.getLogger("worker")


async def main() -> None:
    settings = Settings()
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with Worker(
        client,
        task_queue=os.environ["TASK_QUEUE"],
        workflows=BASELINE_WORKFLOWS,
        activities=[noop],
        max_cached_workflows=settings.worker_max_cached_workflows,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
    ):
        log.info("worker polling task queue %r", os.environ["TASK_QUEUE"])  # what the bench waits for
        await stop.wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
