"""The access_restored notice: queued only once the IAM holds each restored engineer's plan."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.decisions.change import Change
from domain.decisions.restoration import begin_restoration, report_restoration
from domain.effects import EmailEffect
from domain.email_kinds import EmailKind
from domain.spec import parse_spec
from domain.state import EmergencyRevocation, EngagementState, EngineerState
from domain.vocabulary import CheckStatus, Phase
from tests.sample_spec import spec_data

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
SPEC = parse_spec(spec_data())


def change() -> Change:
    alice = next(e for e in SPEC.engineers if e.email == "alice@firm.example")
    state = EngagementState(
        contract_signed_at=NOW,
        phase=Phase.DELIVERY,
        engineers=[EngineerState(spec=alice, check=CheckStatus.CLEARED, identity_active=False, groups=[])],
        emergency=EmergencyRevocation(actor="ops", reason="lost laptop", requested_at=NOW, emails=[alice.email]),
    )
    return Change(spec=SPEC, state=state, now=NOW, engagement_id="engagement-X")


def test_the_notice_waits_for_the_iam_then_names_the_groups_read_back() -> None:
    c = change()
    restoration = begin_restoration(c, "fran", c.state.engineers)
    assert restoration.reason == "lost laptop" and restoration.emails == ["alice@firm.example"]

    assert report_restoration(c, restoration) is False  # the IAM has not caught up yet
    assert not c.queued

    alice = c.state.engineers[0]
    alice.identity_active, alice.groups = True, ["prod-readonly", "repo-write", "staging-deploy"]
    assert report_restoration(c, restoration) is True
    [email] = [e for e in c.queued if isinstance(e, EmailEffect)]
    assert email.kind is EmailKind.ACCESS_RESTORED
    assert "prod-readonly" in email.facts["engineers"] and email.facts["reason"] == "lost laptop"
    assert email.facts["restored_by"] == "fran"


def test_nothing_to_announce_when_the_engineer_left_meanwhile() -> None:
    c = change()
    restoration = begin_restoration(c, "fran", c.state.engineers)
    c.state.engineers[0].removed = True
    assert report_restoration(c, restoration) is True and not c.queued
