"""The promises that gate access: the NDA before anything, a cleared check before production."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.commands import RecordCheckResult, RecordNdaSigned
from domain.vocabulary import CheckStatus, Phase
from tests.helpers import Harness

ALICE, BOB, CAROL = "alice@firm.example", "bob@firm.example", "carol@firm.example"


async def test_nothing_but_the_nda_request_and_reminders_until_the_deadline_cancels(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    await harness.settle(handle, Phase.AWAITING_NDA)
    await env.sleep(timedelta(days=7, hours=1))  # two reminder intervals of 3 days
    await harness.settle(handle, Phase.AWAITING_NDA)
    rows = await harness.mail.outbox(handle.id)
    assert sorted((r.kind, r.occurrence) for r in rows) == sorted(
        [("nda_request", 1), ("nda_reminder", 1), ("nda_reminder", 2)]
    )
    assert {r.recipient for r in rows} == {"sam@acme.example"}
    for person in (ALICE, BOB, CAROL):
        assert not (await harness.iam(person)).exists

    await env.sleep(timedelta(days=24))  # past the 30-day deadline
    summary = await handle.result()
    assert summary.phase is Phase.CANCELLED
    view = await harness.status(handle)
    assert view.cancelled_reason and "NDA was not signed" in view.cancelled_reason
    kinds = {r.kind for r in await harness.mail.outbox(handle.id)}
    assert kinds == {"nda_request", "nda_reminder", "cancellation"}
    for person in (ALICE, BOB, CAROL):
        assert not (await harness.iam(person)).exists
    assert await harness.store.grants(handle.id) == []


async def test_production_only_after_a_cleared_check_and_a_failed_check_removes_all_access(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam"))
    await harness.settle(handle, Phase.ONBOARDING)
    consent = [r for r in await harness.mail.outbox(handle.id) if r.kind == "check_consent_request"]
    assert sorted(r.recipient for r in consent) == [ALICE, BOB]

    # Days pass without a result: reminders go out, and production stays closed.
    await env.sleep(timedelta(days=3, hours=1))
    view = await harness.settle(handle, Phase.ONBOARDING)
    assert "prod-readonly" not in (await harness.iam(ALICE)).groups
    assert "prod-admin" not in (await harness.iam(BOB)).groups
    reminders = [r for r in await harness.mail.outbox(handle.id) if r.kind == "check_consent_reminder"]
    assert sorted(r.recipient for r in reminders) == [ALICE, BOB]

    await harness.update(handle, RecordCheckResult(actor="hr", email=ALICE, outcome="failed", notes="credentials"))
    view = await harness.settle(handle, Phase.ONBOARDING)
    alice = await harness.iam(ALICE)
    assert alice.groups == set() and not alice.active
    assert next(e for e in view.engineers if e.email == ALICE).check is CheckStatus.FAILED
    assert (await harness.iam(BOB)).groups == {"repo-read", "staging-admin"}  # still waiting, no production

    await harness.update(handle, RecordCheckResult(actor="hr", email=BOB, outcome="cleared"))
    await harness.settle(handle, Phase.DELIVERY)
    assert (await harness.iam(BOB)).groups == {"repo-read", "staging-admin", "prod-admin"}
    assert (await harness.iam(ALICE)).groups == set()

    results = [r for r in await harness.mail.outbox(handle.id) if r.kind == "check_result"]
    failed = [r for r in results if "failed" in r.subject]
    assert failed and {r.recipient for r in failed} >= {"ian@acme.example", "erin@acme.example"}
    assert "removed" in failed[0].body_text
    revoked = [g for g in await harness.store.grants(handle.id) if g.engineer_email == ALICE]
    assert revoked and all(g.revoked_at is not None and g.revoke_evidence["active"] is False for g in revoked)
    assert {g.revoked_by for g in revoked} == {"background-check (failed)"}
