"""A pytest run that used Temporal reports its real outcome: the summary and the exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

INNER = """
from temporalio.testing import WorkflowEnvironment
import sys
from pathlib import Path

async def test_uses_a_temporal_test_server():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"))
    await env.shutdown()
    assert OUTCOME
"""


@pytest.mark.parametrize(("outcome", "status", "summary"), [(True, 0, "1 passed"), (False, 1, "1 failed")])
def test_pytest_exits_with_its_own_status_after_using_temporal(
    tmp_path: Path, outcome: bool, status: int, summary: str
) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER.replace("OUTCOME", str(outcome)))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-c", str(ROOT / "pyproject.toml"), f"--rootdir={ROOT}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == status, result.stdout + result.stderr
    assert summary in result.stdout.splitlines()[-1]
