"""Access certification on the time-skipping server, against the real SCIM peer and PostgreSQL: a
round answered by Update, then a scheduled round nobody answers, whose due date applies the spec's
rule (revoke) and the IAM reads it back. The run is the saved history ``certification_<label>``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.email import LINK_WITHHELD
from adapters.certification_links import LinkSigner
from adapters.db import EngagementStore
from adapters.evidence import engagement_records
from adapters.scim import ScimDirectory
from domain.commands import CertifyAccess, RecordNdaSigned, RequestAccessReview
from domain.evidence import build_pack
from domain.spec import EngagementSpec
from domain.vocabulary import Phase
from emails.evidence_report import evidence_report
from tests.helpers import Harness
from tests.histories_io import keep
from tests.sample_spec import ROLES, spec_data
from workflows.engagement import EngagementWorkflow

CAROL = "carol@firm.example"
SIGNER = LinkSigner(b"test-certification-key-of-32-bytes!", "http://127.0.0.1:9/")
LINK = re.compile(r"http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@pytest_asyncio.fixture
async def certifying(
    env: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The harness, its email activity signing certification links."""
    async with Harness.running(env.client, store, tenant, tmp_path, links=SIGNER) as running:
        yield running


def carol_only(harness: Harness, default: str) -> EngagementSpec:
    carol = [e for e in spec_data()["engineers"] if e["email"] == CAROL]
    return harness.spec(engineers=carol, roles={"analyst": ROLES["analyst"]}, certification_default=default)


async def certification_links(harness: Harness, handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The links as the IAM owner reads them in the emails; the outbox's record of each email keeps
    everything but the link (a credential until the round is due)."""
    rows = [r for r in await harness.mail.outbox(handle.id) if r.kind == "access_certification"]
    assert all(r.recipient == "ian@acme.example" and r.state == "sent" for r in rows)
    assert all(LINK_WITHHELD in r.body_text and not LINK.search(r.body_text + r.body_html) for r in rows)
    received = harness.received("access_certification")
    assert len(received) == len(rows) and all(m["To"].addresses[0].addr_spec == "ian@acme.example" for m in received)
    bodies = [part.get_content() for m in received if (part := m.get_body(("plain",))) is not None]
    return [m.group(0) for body in bodies if (m := LINK.search(body))]


async def test_an_unanswered_round_applies_the_rule_at_its_due_date(
    env: WorkflowEnvironment, certifying: Harness
) -> None:
    harness = certifying
    handle = await harness.start(carol_only(harness, "revoke"))
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
    await harness.settle(handle, Phase.DELIVERY)

    # Round 1, after a requested review: the IAM owner keeps Carol (an Update, as the page sends it).
    await harness.update(handle, RequestAccessReview(actor="ian"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert view.next_deadline and view.next_deadline.label == "access certification due"
    [link] = await certification_links(harness, handle)
    due = view.next_deadline.at
    claims = SIGNER.verify(link.rsplit("/", 1)[1], due - timedelta(seconds=1))
    assert (claims.engagement_id, claims.round, claims.expires_at) == (handle.id, 1, due.replace(microsecond=0))
    round_1 = await handle.query(EngagementWorkflow.certification)
    assert round_1.open and [(e.email, e.groups) for e in round_1.engineers] == [(CAROL, ["ticketing"])]
    await harness.update(handle, CertifyAccess(actor="ian@acme.example", round=1, email=CAROL, decision="keep"))
    await harness.settle(handle, Phase.DELIVERY)
    assert not (await handle.query(EngagementWorkflow.certification)).open
    assert (await harness.iam(CAROL)).groups == {"ticketing"}

    # Round 2, after the scheduled review: nobody answers, and the due date revokes Carol.
    await env.sleep(timedelta(days=30, hours=1))
    await harness.settle(handle, Phase.DELIVERY)
    assert len(await certification_links(harness, handle)) == 2
    await env.sleep(timedelta(days=14, hours=1))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert next(e for e in view.engineers if e.email == CAROL).suspended
    identity = await harness.iam(CAROL)
    assert identity.groups == set() and not identity.active  # read back from the SCIM peer

    audit = [(a.action, a.details) for a in await harness.store.audit_entries(handle.id)]
    decided = [d for action, d in audit if action == "certification_decided"]
    assert [(d["round"], d["engineer"], d["decision"]) for d in decided] == [(1, CAROL, "keep")]
    [applied] = [d for action, d in audit if action == "certification_default_applied"]
    assert (applied["round"], applied["decision"], applied["engineers"]) == (2, "revoke", [CAROL])
    assert await harness.alerts(handle) == []  # revoke is the rule: nobody needs alerting

    # The evidence pack: who answered what, and what the rule decided.
    pack = build_pack(await engagement_records(harness.store.engine, handle.id), timedelta(minutes=15))
    assert [(c.round, c.engineer, c.decision, c.decided_by) for c in pack.certifications] == [
        (1, CAROL, "keep", "ian@acme.example"),
        (2, CAROL, "revoke", "default applied"),
    ]
    assert "Access certifications" in evidence_report(pack)
    [revoked] = [r for r in pack.revocations if r.email == CAROL]
    assert "certification default applied" in revoked.trigger and "round 2: revoke" in revoked.trigger, revoked
    await keep("certification", await handle.fetch_history())


async def test_an_unanswered_round_under_the_keep_rule_keeps_access_and_escalates(
    env: WorkflowEnvironment, certifying: Harness
) -> None:
    """Under ``keep`` nobody loses access for a client's silence, but the firm hears of it: an admin
    alert, and an escalation email to the firm's lead; the audit says the rule decided."""
    harness = certifying
    handle = await harness.start(carol_only(harness, "keep"))
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
    await harness.settle(handle, Phase.DELIVERY)
    await harness.update(handle, RequestAccessReview(actor="ian"))
    await harness.settle(handle, Phase.DELIVERY)
    assert len(await certification_links(harness, handle)) == 1

    await env.sleep(timedelta(days=14, hours=1))  # past the due date, before the next review
    view = await harness.settle(handle, Phase.DELIVERY)

    assert not next(e for e in view.engineers if e.email == CAROL).suspended
    identity = await harness.iam(CAROL)
    assert identity.active and identity.groups == {"ticketing"}
    assert not (await handle.query(EngagementWorkflow.certification)).open
    audit = [(a.action, a.details) for a in await harness.store.audit_entries(handle.id)]
    [applied] = [d for action, d in audit if action == "certification_default_applied"]
    assert (applied["round"], applied["decision"], applied["engineers"]) == (1, "keep", [CAROL])
    [alert] = await harness.alerts(handle)
    assert alert.kind == "certification_unanswered"
    escalations = [r for r in await harness.mail.outbox(handle.id) if r.kind == "certification_escalation"]
    assert [(r.recipient, r.state) for r in escalations] == [("fran@firm.example", "sent")]
