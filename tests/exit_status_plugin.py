"""Make pytest report its real outcome (temporalio/sdk-python#300).

A process that used a Temporal client or test server can abort (exit 134/139) during interpreter
teardown after its work succeeded. Once pytest has printed its summary, flush and leave at once
with pytest's own exit status, before that teardown can run.
"""

from __future__ import annotations

import os
import sys

import pytest

_status: int | None = None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _status
    _status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _status is None or os.environ.get("PYTEST_NO_HARD_EXIT"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status)
