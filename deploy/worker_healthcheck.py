"""Container healthcheck of the worker: healthy when Temporal lists a poller on the engagements task
queue whose identity names this host (the SDK's default identity is ``pid@hostname``), i.e. this
container's worker is connected and polling, not merely alive.

    python deploy/worker_healthcheck.py     exit 0 healthy, 1 not (one line on stderr)
"""

from __future__ import annotations

import asyncio
import socket
import sys

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from adapters.temporal_connection import TemporalConnectionError, connect
from settings import Settings


async def polling_here(client: Client, task_queue: str, host: str) -> bool:
    """Whether a workflow-task poller from ``host`` is on ``task_queue`` (Temporal keeps pollers
    listed for a few minutes after their last poll)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return any(poller.identity.endswith(f"@{host}") for poller in response.pollers)


async def main() -> int:
    settings = Settings()
    try:
        client = await connect(settings)
    except TemporalConnectionError as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    if await polling_here(client, settings.task_queue, socket.gethostname()):
        return 0
    print(f"unhealthy: no poller from {socket.gethostname()} on task queue {settings.task_queue!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
