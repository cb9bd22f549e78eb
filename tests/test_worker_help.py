"""``worker.py --help`` prints its help and starts nothing (issue 11): no Temporal, no database is
reachable at the addresses it is given, so anything more than help would fail. Outside the unit
tier, because the worker's imports alone take seconds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_worker_help_only_prints_help() -> None:
    out = subprocess.run(
        [sys.executable, "worker.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "TEMPORAL_ADDRESS": "127.0.0.1:1", "DATABASE_URL": "postgresql+asyncpg://x@127.0.0.1:1/x"},
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.startswith("usage: worker.py"), out
    assert out.stderr == ""
