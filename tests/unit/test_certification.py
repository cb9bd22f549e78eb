"""Access certification without any server: the signed link, the decisions, and the page's refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.certification_links import InvalidLink, LinkSigner
from certification import Refused, certification_app
from domain.commands import CertifyAccess, RequestAccessReview
from domain.decisions import certification as rules
from domain.decisions import decide
from domain.decisions.certification import WrongRound
from domain.decisions.change import SYSTEM, Change, NoChange, UnknownEngineer
from domain.effects import AuditEffect, EmailEffect
from domain.email_kinds import EmailKind
from domain.spec import parse_spec
from domain.state import Certification, EngagementState, EngineerState
from domain.views import CertificationView, certification_view, format_status, status_view
from domain.vocabulary import CheckStatus, Phase
from tests.sample_spec import spec_data

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
KEY = b"k" * 32
SIGNER = LinkSigner(KEY, "https://certify.example/")
ALICE, CAROL = "alice@firm.example", "carol@firm.example"


# ---------------------------------------------------------------- the link


def test_a_link_verifies_until_it_expires() -> None:
    link = SIGNER.link("engagement-ACME-1", 3, NOW + timedelta(days=14))
    assert link.startswith("https://certify.example/c/")
    token = link.rsplit("/", 1)[1]
    claims = SIGNER.verify(token, NOW)
    assert (claims.engagement_id, claims.round, claims.expires_at) == ("engagement-ACME-1", 3, NOW + timedelta(days=14))
    with pytest.raises(InvalidLink, match="expired"):
        SIGNER.verify(token, NOW + timedelta(days=14))
    assert SIGNER.token("engagement-ACME-1", 3, NOW + timedelta(days=14)) == token  # every retry signs the same


def test_another_key_or_a_short_key_is_refused() -> None:
    token = SIGNER.token("engagement-ACME-1", 1, NOW + timedelta(days=1))
    with pytest.raises(InvalidLink, match="bad signature"):
        LinkSigner(b"x" * 32, "https://certify.example").verify(token, NOW)
    with pytest.raises(ValueError, match="32 bytes"):
        LinkSigner(b"short", "https://certify.example")


@settings(deadline=None)
@given(position=st.integers(min_value=0), replacement=st.characters(codec="ascii"))
def test_any_changed_character_is_refused(position: int, replacement: str) -> None:
    token = SIGNER.token("engagement-ACME-1", 2, NOW + timedelta(days=1))
    index = position % len(token)
    tampered = token[:index] + replacement + token[index + 1 :]
    if tampered == token:
        return
    try:
        claims = SIGNER.verify(tampered, NOW)
    except InvalidLink:
        return
    # base64's last character carries spare bits: the same bytes may decode from two spellings.
    assert (claims.engagement_id, claims.round) == ("engagement-ACME-1", 2)


@settings(deadline=None)
@given(st.text(max_size=700))
def test_arbitrary_input_is_refused_and_nothing_else_is_raised(text: str) -> None:
    with pytest.raises(InvalidLink):
        SIGNER.verify(text, NOW)


def test_a_token_for_another_round_cannot_be_forged_from_a_real_one() -> None:
    token = SIGNER.token("engagement-ACME-1", 2, NOW + timedelta(days=1))
    signature = token.split(".")[1]
    other = SIGNER.token("engagement-ACME-1", 3, NOW + timedelta(days=1)).split(".")[0]
    with pytest.raises(InvalidLink):
        SIGNER.verify(f"{other}.{signature}", NOW)
    assert SIGNER.form_token_ok(token, SIGNER.form_token(token))
    assert not SIGNER.form_token_ok(token, SIGNER.form_token(f"{other}.{signature}"))
    assert not SIGNER.form_token_ok(token, "é" * 10)


# ---------------------------------------------------------------- the decisions


def delivery(default: str | None = "revoke") -> Change:
    spec = parse_spec({**spec_data(), "certification_default": default})
    engineers = [
        EngineerState(spec=e, check=CheckStatus.CLEARED, identity_active=True, groups=["repo-write"])
        for e in spec.engineers
    ]
    state = EngagementState(phase=Phase.DELIVERY, contract_signed_at=NOW - timedelta(days=90), engineers=engineers)
    return Change(spec=spec, state=state, now=NOW, engagement_id="engagement-x")


def test_a_round_lists_every_current_engineer_and_emails_the_iam_owner_only() -> None:
    change = delivery()
    certification = rules.open_round(change)
    assert certification is not None and certification.round == 1
    assert certification.due_at == NOW + timedelta(days=14)
    assert [e.email for e in certification.engineers] == [e.email for e in change.state.engineers]
    [email] = [e for e in change.queued if isinstance(e, EmailEffect)]
    assert email.kind is EmailKind.ACCESS_CERTIFICATION
    assert [r.email for r in email.recipients] == ["ian@acme.example"]
    assert "link" in email.facts and "alice@firm.example" in email.facts["engineers"]
    assert rules.open_round(change) is None  # one round at a time
    assert rules.open_round(delivery(default=None)) is None  # a spec without certification


def test_revoke_suspends_at_once_and_another_round_is_refused() -> None:
    change = delivery()
    rules.open_round(change)
    state, spec = change.state, change.spec
    with pytest.raises(WrongRound):
        decide(spec, state, NOW, CertifyAccess(actor="ian", round=2, email=ALICE, decision="keep"), "e")
    decide(spec, state, NOW, CertifyAccess(actor="ian", round=1, email=ALICE, decision="revoke"), "e")
    alice = state.engineer(ALICE)
    assert alice is not None and alice.suspended and alice.requested_by == "ian"
    [shown] = [e for e in status_view(spec, state).engineers if e.email == ALICE]
    assert shown.suspended_for == "access certification"  # not taken for an emergency
    assert f"<{ALICE}>" in (text := format_status(status_view(spec, state))) and "(access certification)" in text
    assert "emergency" not in text
    with pytest.raises(NoChange):
        decide(spec, state, NOW, CertifyAccess(actor="ian", round=1, email=ALICE, decision="keep"), "e")
    with pytest.raises(UnknownEngineer):
        decide(spec, state, NOW, CertifyAccess(actor="ian", round=1, email="x@y.example", decision="keep"), "e")
    view = certification_view(spec, state)
    assert view.open and view.round == 1 and view.iam_owner_email == "ian@acme.example"
    for email in (e.email for e in state.engineers if e.email != ALICE):
        decide(spec, state, NOW, CertifyAccess(actor="ian", round=1, email=email, decision="keep"), "e")
    assert state.certification is None  # every engineer answered: the round is closed
    with pytest.raises(WrongRound):
        decide(spec, state, NOW, CertifyAccess(actor="ian", round=1, email=CAROL, decision="keep"), "e")


@pytest.mark.parametrize("default", ["keep", "revoke"])
def test_the_due_date_applies_the_configured_rule_to_the_undecided(default: str) -> None:
    change = delivery(default)
    rules.open_round(change)
    decide(change.spec, change.state, NOW, CertifyAccess(actor="ian", round=1, email=ALICE, decision="keep"), "e")
    assert not rules.due(change.state, NOW + timedelta(days=13))
    later = Change(spec=change.spec, state=change.state, now=NOW + timedelta(days=14), engagement_id="e")
    assert rules.due(later.state, later.now)
    assert rules.apply_default(later) == default
    suspended = {e.email for e in later.state.engineers if e.suspended}
    assert suspended == (set() if default == "keep" else {e.email for e in later.state.engineers} - {ALICE})
    [audit] = [e for e in later.queued if isinstance(e, AuditEffect) and e.action == "certification_default_applied"]
    assert audit.actor == SYSTEM and audit.details["decision"] == default and ALICE not in audit.details["engineers"]
    escalations = [e for e in later.queued if isinstance(e, EmailEffect)]
    alerts = [a.kind for a in later.state.alerts]
    if default == "keep":  # kept without an answer: the firm's lead hears of it, and an admin
        assert [e.kind for e in escalations] == [EmailKind.CERTIFICATION_ESCALATION]
        assert [r.email for r in escalations[0].recipients] == ["fran@firm.example"]
        assert alerts == ["certification_unanswered"]
    else:
        assert escalations == [] and alerts == []
    assert later.state.certification is None


def test_a_review_request_does_not_open_a_round_by_itself() -> None:
    change = delivery()
    decide(change.spec, change.state, NOW, RequestAccessReview(actor="ian"), "e")
    assert change.state.certification is None  # the workflow opens it once the review has read the IAM


# ---------------------------------------------------------------- the page refuses, and changes nothing


class Engagements:
    def __init__(self, view: CertificationView) -> None:
        self._view = view
        self.sent: list[CertifyAccess] = []

    async def view(self, engagement_id: str) -> CertificationView:
        return self._view

    async def certify(self, engagement_id: str, command: CertifyAccess) -> str:
        self.sent.append(command)
        if command.email == CAROL:
            raise Refused("no engineer <b>carol</b>")
        return "ok"


@pytest.fixture
def page() -> tuple[httpx.AsyncClient, Engagements, str]:
    change = delivery()
    rules.open_round(change)
    engagements = Engagements(certification_view(change.spec, change.state))
    app = certification_app(SIGNER, engagements, clock=lambda: NOW)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://certify.test")
    return client, engagements, SIGNER.token("engagement-x", 1, NOW + timedelta(days=14))


async def test_the_page_refuses_bad_links_and_posts_without_the_form_token(
    page: tuple[httpx.AsyncClient, Engagements, str],
) -> None:
    client, engagements, token = page
    shown = await client.get(f"/c/{token}")
    assert shown.status_code == 200 and "Alice Dev" in shown.text and "<script" not in shown.text
    assert shown.headers["content-security-policy"].startswith("default-src 'none'")
    assert shown.headers["referrer-policy"] == "no-referrer"
    expired = SIGNER.token("engagement-x", 1, NOW)
    other_round = SIGNER.token("engagement-x", 2, NOW + timedelta(days=1))
    for bad in (token[:-2] + "AA", expired, other_round, "x" * 600, "a.b"):
        assert (await client.get(f"/c/{bad}")).status_code == 403
        post = await client.post(f"/c/{bad}", data={"csrf": SIGNER.form_token(bad), "d0": "revoke"})
        assert post.status_code == 403
    for csrf in ("", SIGNER.form_token(other_round)):
        assert (await client.post(f"/c/{token}", data={"csrf": csrf, "d0": "revoke"})).status_code == 403
    csrf = SIGNER.form_token(token)
    for form in ({"csrf": csrf, "d0": "maybe"}, {"csrf": csrf, "d99": "keep"}, {"csrf": csrf}):
        assert (await client.post(f"/c/{token}", data=form)).status_code == 400
    assert (
        await client.post(f"/c/{token}", content=b"x" * 20_000, headers={"content-type": "text/plain"})
    ).status_code == 400
    assert engagements.sent == []  # nothing refused reached the engagement

    done = await client.post(f"/c/{token}", data={"csrf": csrf, "d0": "revoke", "d2": "keep"})
    assert done.status_code == 200
    assert [(c.email, c.decision, c.actor, c.actor_source) for c in engagements.sent] == [
        (ALICE, "revoke", "ian@acme.example", "signed_link"),
        (CAROL, "keep", "ian@acme.example", "signed_link"),
    ]
    assert "&lt;b&gt;carol&lt;/b&gt;" in done.text and "<b>carol" not in done.text


async def test_one_address_is_slowed_down_after_thirty_requests_a_minute() -> None:
    change = delivery()
    rules.open_round(change)
    now = [NOW]
    app = certification_app(SIGNER, Engagements(certification_view(change.spec, change.state)), clock=lambda: now[0])
    token = SIGNER.token("engagement-x", 1, NOW + timedelta(days=14))
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 4000)), base_url="http://certify.test"
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://certify.test") as client:
        statuses = [(await client.get(f"/c/{token[:-2]}AA")).status_code for _ in range(30)]
        assert statuses == [403] * 30  # wrong links, each refused
        limited = await client.get(f"/c/{token}")
        assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
        assert (await client.post(f"/c/{token}", data={"csrf": SIGNER.form_token(token)})).status_code == 429
        assert (await other.get(f"/c/{token}")).status_code == 200  # another address is not held back
        now[0] = NOW + timedelta(minutes=1)
        assert (await client.get(f"/c/{token}")).status_code == 200  # the window moved on
    await other.aclose()


# ---------------------------------------------------------------- the next moment


def test_the_open_round_due_date_comes_first_when_it_is_earlier() -> None:
    state = EngagementState(contract_signed_at=NOW, engineers=[])
    later, sooner = NOW + timedelta(days=30), NOW + timedelta(days=14)
    assert rules.or_due(state, later, "access review") == (later, "access review")  # no round open
    assert rules.or_due(state, None, "access review") == (None, "access review")
    state.certification = Certification(round=1, opened_at=NOW, due_at=sooner, engineers=[])
    assert rules.or_due(state, later, "access review") == (sooner, "access certification due")
    assert rules.or_due(state, None, "end date") == (sooner, "access certification due")
    assert rules.or_due(state, NOW + timedelta(days=1), "end date") == (NOW + timedelta(days=1), "end date")
