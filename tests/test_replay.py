"""Saved histories of runs that already happened must replay against today's workflow code:
a change that would break an engagement in flight fails here (put it behind workflow.patched)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import SANDBOX, WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def test_histories_are_saved() -> None:
    names = {p.stem for p in HISTORIES}
    for version in ("v1", "v2"):  # v1: before the patches; v2: with them
        assert {f"engagement_full_lifecycle_{version}", f"background_check_1_{version}"} <= names
    # v3: one path each (tests/test_history_paths.py), recorded before the workflow was reorganised.
    assert {f"{path}_v3" for path in V3_PATHS} <= names
    # v4: the same paths with the IAM lane and side-effect lanes (the iam-lane patch), and the lifecycle.
    assert {f"{path}_v4" for path in V3_PATHS} | {"engagement_full_lifecycle_v4"} <= names
    # v5: access certification (the certification patch): a round answered by Update, then one nobody
    # answers, revoked by the spec's rule at its due date (tests/test_certification.py).
    assert {"certification_v5"} <= names
    # v6: the burst-bound patch (tests/test_burst_bound.py): a full run whose email in flight is
    # cancelled (SendGrid holding it), a command refused for the next run, an emergency revocation
    # performed while full, then the continue-as-new.
    assert {"burst_bound_full_run_v6"} <= names
    # v9: the status-memo patch (tests/test_status_memo.py, tests/test_lifecycle.py): the status view
    # upserted into the memo in each task that changes it, in delivery, cancelled, past the memo's
    # bound (the key removed), and contract to closed.
    v9 = {"status_memo_delivery", "status_memo_cancelled", "status_memo_past_bound", "engagement_full_lifecycle"}
    assert {f"{name}_v9" for name in v9} <= names


V3_PATHS = (
    "every_update",  # every update but cancel_engagement, both signals, contract to closed
    "every_update_check_failed",  # BackgroundCheckWorkflow: failed
    "every_update_check_cleared",  # BackgroundCheckWorkflow: cleared (after a role change with production)
    "nda_expired",  # NDA reminders, then cancelled by the deadline
    "cancelled_in_onboarding",  # cancel_engagement while a check runs: the wind-down cancels it
    "cancelled_in_onboarding_check",  # BackgroundCheckWorkflow: cancelled by the wind-down
    "continue_as_new_run1",  # a run ending in continue-as-new (dev server)
    "continue_as_new_run2",  # the run that follows it
    "emergency_revoke_restore",  # everyone revoked and restored while a check runs
    "access_review_scheduled",  # the review timer removes a group added by hand
    "access_review_requested",  # request_access_review removes a group added by hand
    "revocation_alert",  # the IAM does not confirm a revocation: admin alert, then the retry lands
)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path) -> None:
    saved = json.loads(path.read_text())  # noqa: ASYNC240  (a small file, read once)
    history = WorkflowHistory.from_json(saved["workflow_id"], saved["history"])
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=SANDBOX)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
