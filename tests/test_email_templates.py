"""Every email of the lifecycle renders, in text and HTML, from the same facts, dated in the reader's terms."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from jinja2 import UndefinedError

from domain.delivery import MessageState, event_state, states_before
from domain.email_kinds import ENGINEER_ADDRESSED, EmailKind, Recipient, people, recipients
from domain.spec import EngagementSpec, EngagementType, parse_spec
from emails.dates import local_time
from emails.render import render
from emails.samples import sample_facts, sample_recipient
from emails.templates import SESSION_KINDS, required_facts
from tests.sample_spec import spec_data

ORGANIZER = Recipient(name="Engagement Office", email="eo@firm.example")
STAMP = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)


def spec_of(engagement_type: EngagementType) -> EngagementSpec:
    data = spec_data()
    data["engagement_type"] = engagement_type.value
    return parse_spec(data)


class _Structure(HTMLParser):
    """Collects the tags and the text of an HTML document, and checks that every tag is closed."""

    VOID = frozenset({"meta", "br"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def structure(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    assert parser.open == [], f"unclosed: {parser.open}"
    return parser


@pytest.mark.parametrize("engagement_type", list(EngagementType))
@pytest.mark.parametrize("timezone", [None, "Asia/Kolkata"])
@pytest.mark.parametrize("kind", list(EmailKind))
def test_every_kind_renders_from_sample_facts(
    kind: EmailKind, engagement_type: EngagementType, timezone: str | None
) -> None:
    spec = spec_of(engagement_type)
    facts = sample_facts(kind, spec)
    base = sample_recipient(kind, spec)
    recipient = Recipient(name=base.name, email=base.email, timezone=timezone)

    email = render(kind, facts, recipient, organizer=ORGANIZER, stamped_at=STAMP)

    assert required_facts(kind) <= set(facts)
    assert email.subject and "\n" not in email.subject
    for part in (email.subject, email.text, email.html):
        assert "{{" not in part and "{%" not in part
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", part), "an ISO date was not put in the reader's terms"
    assert email.text.startswith(f"Dear {recipient.name},")
    zone = timezone or "UTC"
    assert f"Times are in the {zone} time zone." in email.text
    abbreviation = "IST" if timezone else "UTC"
    assert set(re.findall(r"\d{2}:\d{2} ([A-Z]+)\b", email.subject + "\n" + email.text)) <= {abbreviation}

    parsed = structure(email.html)
    assert email.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en">' in email.html
    assert {"title", "h1", "p"} <= set(parsed.tags)
    assert f"Dear {recipient.name}," in "".join(parsed.text)
    assert (kind in SESSION_KINDS) == bool(email.attachments)


def test_html_and_text_carry_the_same_facts() -> None:
    spec = spec_of(EngagementType.MANAGED_OUTSOURCING)
    facts = sample_facts(EmailKind.NOTICE_RECEIVED, spec)
    recipient = Recipient(name="Erin", email="erin@acme.example", timezone="Europe/Paris")
    email = render(EmailKind.NOTICE_RECEIVED, facts, recipient)

    end = local_time(facts["end_date"], "Europe/Paris")
    assert end.endswith(("CET", "CEST"))
    assert f"End date (all access revoked): {end}" in email.text
    assert ">End date (all access revoked)</th><td" in email.html and end in email.html
    assert '<th scope="row"' in email.html
    assert end in email.subject


def test_facts_are_escaped_in_html_only() -> None:
    facts = {"client": "Acme <b>&</b> Co", "contract_id": "C-1", "reason": 'a "quoted" <script>x</script>'}
    email = render(EmailKind.CANCELLATION, facts, Recipient(name="Sam <Boss>", email="sam@acme.example"))

    assert 'a "quoted" <script>x</script>' in email.text
    assert "<script>" not in email.html and "&lt;script&gt;x&lt;/script&gt;" in email.html
    assert "Acme &lt;b&gt;&amp;&lt;/b&gt; Co" in email.html
    assert "Dear Sam &lt;Boss&gt;," in email.html
    structure(email.html)


def test_bulleted_facts_become_a_list() -> None:
    spec = spec_of(EngagementType.STAFF_AUGMENTATION)
    facts = sample_facts(EmailKind.REVOCATION_REPORT, spec)
    email = render(EmailKind.REVOCATION_REPORT, facts, Recipient(name="Ian", email="ian@acme.example"))

    parsed = structure(email.html)
    assert parsed.tags.count("li") == len(spec.engineers)
    for engineer in spec.engineers:
        assert f"- {engineer.name} ({engineer.email}): removed from" in email.text


def test_a_missing_fact_is_an_error_never_a_blank() -> None:
    facts = sample_facts(EmailKind.EMERGENCY_REVOCATION, spec_of(EngagementType.MANAGED_OUTSOURCING))
    del facts["reason"]
    with pytest.raises(UndefinedError, match="reason"):
        render(EmailKind.EMERGENCY_REVOCATION, facts, Recipient(name="Ian", email="ian@acme.example"))


def test_optional_cancellation_reason() -> None:
    facts = sample_facts(EmailKind.SESSION_CANCELLED, spec_of(EngagementType.MANAGED_OUTSOURCING))
    recipient = Recipient(name="Lee", email="lee@acme.example")
    with_reason = render(EmailKind.SESSION_CANCELLED, facts, recipient, organizer=ORGANIZER, stamped_at=STAMP)
    assert f"Reason: {facts['reason']}" in with_reason.text
    for without in ({k: v for k, v in facts.items() if k != "reason"}, {**facts, "reason": ""}):
        email = render(EmailKind.SESSION_CANCELLED, without, recipient, organizer=ORGANIZER, stamped_at=STAMP)
        assert "Reason:" not in email.text and "Reason:" not in email.html
        assert "\n\n\n" not in email.text


@pytest.mark.parametrize(
    ("value", "timezone", "shown"),
    [
        ("2027-03-01T17:00:00+00:00", "Europe/Paris", "Mon 1 Mar 2027, 18:00 CET"),
        ("2027-07-01T17:00:00+00:00", "Europe/Paris", "Thu 1 Jul 2027, 19:00 CEST"),
        ("2027-03-01T17:00:00Z", None, "Mon 1 Mar 2027, 17:00 UTC"),
        ("2027-03-01T17:00:00.123456+00:00", "America/New_York", "Mon 1 Mar 2027, 12:00 EST"),
        ("2027-03-01T23:30:00+00:00", "Asia/Kolkata", "Tue 2 Mar 2027, 05:00 IST"),
        ("2027-03-01T17:00:00", "Europe/Lisbon", "Mon 1 Mar 2027, 17:00 WET"),
        ("not set", "Europe/Paris", "not set"),
        ("2027-03-01 17:00 UTC", "Europe/Paris", "2027-03-01 17:00 UTC"),
        ("2027-03-01", "Europe/Paris", "2027-03-01"),
        ("Mon 1 Mar 2027, 18:00 CET", "Asia/Tokyo", "Mon 1 Mar 2027, 18:00 CET"),
    ],
)
def test_when_shows_dates_in_the_readers_time_zone(value: str, timezone: str | None, shown: str) -> None:
    assert local_time(value, timezone) == shown


def test_when_in_a_template_uses_the_recipients_zone() -> None:
    facts: dict[str, Any] = {"client": "Acme", "transition_ends_at": "2027-03-01T17:00:00+00:00"}
    paris = render(EmailKind.TRANSITION_OPEN, facts, Recipient(name="E", email="e@a.example", timezone="Europe/Paris"))
    utc = render(EmailKind.TRANSITION_OPEN, facts, Recipient(name="E", email="e@a.example"))
    assert paris.subject == "Acme: the transition window is open until Mon 1 Mar 2027, 18:00 CET"
    assert utc.subject == "Acme: the transition window is open until Mon 1 Mar 2027, 17:00 UTC"
    legacy_facts = {**facts, "transition_ends_at": "2027-03-01 17:00 UTC"}  # formatted by an older workflow
    legacy = render(
        EmailKind.TRANSITION_OPEN, legacy_facts, Recipient(name="E", email="e@a.example", timezone="Asia/Tokyo")
    )
    assert legacy.subject == "Acme: the transition window is open until 2027-03-01 17:00 UTC"


# ---------------------------------------------------------------- who receives what


def emails(people_: list[Recipient]) -> list[str]:
    return [p.email for p in people_]


@pytest.mark.parametrize("engagement_type", list(EngagementType))
def test_routing_of_the_new_kinds(engagement_type: EngagementType) -> None:
    spec = spec_of(engagement_type)
    invite = emails(recipients(EmailKind.SESSION_INVITE, spec))
    assert emails(recipients(EmailKind.SESSION_RESCHEDULED, spec)) == invite
    assert emails(recipients(EmailKind.SESSION_CANCELLED, spec)) == invite
    assert emails(recipients(EmailKind.TRANSITION_CLOSING, spec)) == emails(recipients(EmailKind.TRANSITION_OPEN, spec))
    assert emails(recipients(EmailKind.EMERGENCY_REVOCATION, spec)) == [
        "ian@acme.example",
        "erin@acme.example",
        "fran@firm.example",
    ]


def test_people_matters_follow_the_engagement_type() -> None:
    managed = emails(recipients(EmailKind.ENGINEER_ADDED, spec_of(EngagementType.MANAGED_OUTSOURCING)))
    staffed = emails(recipients(EmailKind.ENGINEER_ADDED, spec_of(EngagementType.STAFF_AUGMENTATION)))
    assert managed == ["fran@firm.example", "erin@acme.example", "ian@acme.example"]
    assert staffed == ["erin@acme.example", "ian@acme.example"]


def test_every_spec_chosen_kind_has_recipients_and_engineer_kinds_refuse() -> None:
    spec = spec_of(EngagementType.MANAGED_OUTSOURCING)
    for kind in EmailKind:
        if kind in ENGINEER_ADDRESSED:
            with pytest.raises(ValueError, match="addressed to an engineer"):
                recipients(kind, spec)
            assert sample_recipient(kind, spec).email in {str(e.email) for e in spec.engineers}
        else:
            chosen = recipients(kind, spec)
            assert chosen and len({r.email.lower() for r in chosen}) == len(chosen)
    assert len(people(spec)) == 5 + len(spec.engineers)


# ---------------------------------------------------------------- the outbox row's state machine


def test_delivery_states_only_move_forward() -> None:
    assert event_state("processed") is MessageState.PROCESSED
    assert event_state("bounce") is MessageState.BOUNCED
    assert event_state("bounce", "blocked") is MessageState.BLOCKED
    assert event_state("open") is None and event_state("click") is None
    assert MessageState.DEFERRED in states_before(MessageState.DELIVERED)
    assert MessageState.DELIVERED not in states_before(MessageState.DEFERRED)
    assert MessageState.DELIVERED in states_before(MessageState.BOUNCED)  # an asynchronous bounce
    assert MessageState.BOUNCED not in states_before(MessageState.DROPPED)
    assert MessageState.UNKNOWN in states_before(MessageState.SENT)
    assert MessageState.SENDING in states_before(MessageState.PROCESSED)
