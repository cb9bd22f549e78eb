"""Session emails carry an RFC 5545 invitation: one VEVENT, stable UID, growing SEQUENCE, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.email_kinds import EmailKind, Recipient
from domain.spec import parse_spec
from emails.calendar import CalendarMethod, Party, SessionEvent, calendar_invitation, fold, mime_type
from emails.render import render
from emails.samples import sample_facts
from tests.sample_spec import spec_data

ORGANIZER = Recipient(name="Engagement Office", email="eo@firm.example")
LEE = Recipient(name="Lee Incoming", email="lee@acme.example", timezone="Europe/Paris")
STAMP = datetime(2027, 2, 1, 12, 0, 5, tzinfo=UTC)
SPEC = parse_spec(spec_data())


def content_lines(ics: bytes) -> list[str]:
    """The content lines, checked for CRLF and the 75-octet limit, then unfolded."""
    assert ics.endswith(b"\r\n")
    physical = ics[:-2].split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in physical)
    assert all(len(line) <= 75 for line in physical), [len(line) for line in physical]
    unfolded: list[bytes] = []
    for line in physical:
        if line.startswith(b" "):
            unfolded[-1] += line[1:]
        else:
            unfolded.append(line)
    return [line.decode("utf-8") for line in unfolded]


def properties(lines: list[str]) -> dict[str, str]:
    """Name (with parameters) to value, for the lines inside the VEVENT and the calendar header."""
    found: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        found.setdefault(name.split(";", 1)[0], line)
        found.setdefault(name.split(";", 1)[0] + "=", value)
    return found


def invitation_for(kind: EmailKind, **changes: object) -> tuple[str, list[str]]:
    facts = {**sample_facts(kind, SPEC), **changes}
    email = render(kind, facts, LEE, organizer=ORGANIZER, stamped_at=STAMP)
    [attachment] = email.attachments
    return attachment.mime_type, content_lines(attachment.content)


@pytest.mark.parametrize(
    ("kind", "method", "status", "filename"),
    [
        (EmailKind.SESSION_INVITE, "REQUEST", "CONFIRMED", "invite.ics"),
        (EmailKind.SESSION_RESCHEDULED, "REQUEST", "CONFIRMED", "invite.ics"),
        (EmailKind.SESSION_CANCELLED, "CANCEL", "CANCELLED", "cancel.ics"),
    ],
)
def test_session_emails_carry_the_invitation(kind: EmailKind, method: str, status: str, filename: str) -> None:
    facts = {"session_uid": "engagement-ACME-1/arch-1", "session_sequence": 3}
    facts |= {"starts_at": "2027-02-10T14:00:00+00:00", "duration_minutes": 90, "title": "Architecture, part 1; DR"}
    mime, lines = invitation_for(kind, **facts)
    email = render(kind, {**sample_facts(kind, SPEC), **facts}, LEE, organizer=ORGANIZER, stamped_at=STAMP)

    assert mime == f"text/calendar; method={method}" == mime_type(CalendarMethod(method))
    assert email.attachments[0].filename == filename
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert lines.count("BEGIN:VEVENT") == 1 and lines.count("END:VEVENT") == 1
    found = properties(lines)
    assert found["VERSION="] == "2.0"
    assert found["PRODID="].startswith("-//")
    assert found["METHOD="] == method
    assert found["UID="] == "engagement-ACME-1/arch-1"
    assert found["SEQUENCE="] == "3"
    assert found["DTSTAMP="] == "20270201T120005Z"
    assert found["DTSTART="] == "20270210T140000Z"
    assert found["DTEND="] == "20270210T153000Z"
    assert found["SUMMARY="] == "Architecture\\, part 1\\; DR"
    assert found["STATUS="] == status
    assert found["ORGANIZER"] == 'ORGANIZER;CN="Engagement Office":mailto:eo@firm.example'
    assert found["ATTENDEE"].endswith(":mailto:lee@acme.example") and 'CN="Lee Incoming"' in found["ATTENDEE"]
    assert ("RSVP=TRUE" in found["ATTENDEE"]) == (method == "REQUEST")
    # Times in the email follow the reader; the invitation stays in UTC for the calendar to convert.
    assert "Wed 10 Feb 2027, 15:00 CET" in email.text


def test_uid_is_stable_and_sequence_grows_across_the_sessions_life() -> None:
    invite = properties(invitation_for(EmailKind.SESSION_INVITE)[1])
    moved = properties(invitation_for(EmailKind.SESSION_RESCHEDULED)[1])
    cancelled = properties(invitation_for(EmailKind.SESSION_CANCELLED)[1])
    assert invite["UID="] == moved["UID="] == cancelled["UID="]
    assert int(invite["SEQUENCE="]) < int(moved["SEQUENCE="]) < int(cancelled["SEQUENCE="])


def test_every_recipient_gets_the_same_event_addressed_to_them() -> None:
    facts = sample_facts(EmailKind.SESSION_INVITE, SPEC)
    erin = Recipient(name="Erin Manager", email="erin@acme.example")
    first = render(EmailKind.SESSION_INVITE, facts, LEE, organizer=ORGANIZER, stamped_at=STAMP)
    second = render(EmailKind.SESSION_INVITE, facts, erin, organizer=ORGANIZER, stamped_at=STAMP)
    a, b = (properties(content_lines(e.attachments[0].content)) for e in (first, second))
    assert a["UID="] == b["UID="] and a["DTSTART="] == b["DTSTART="]
    assert "erin@acme.example" in b["ATTENDEE"] and "lee@acme.example" in a["ATTENDEE"]


def test_long_and_multibyte_lines_fold_at_75_octets() -> None:
    title = "Übergabe: Systemarchitektur, Betriebshandbücher und Entscheidungsprotokolle \u2013 Teil 2 " * 2
    event = SessionEvent(
        uid="u-1",
        sequence=0,
        starts_at=datetime(2027, 2, 10, 14, 0, tzinfo=UTC),
        duration=timedelta(minutes=60),
        summary=title,
        organizer=Party("Engagement Office", "eo@firm.example"),
        attendee=Party('Zoë "Z" Müller', "zoe@acme.example"),
        description="line one\nline two, with a comma; and a semicolon \\ backslash",
    )
    lines = content_lines(calendar_invitation(event, CalendarMethod.REQUEST, STAMP))
    found = properties(lines)
    assert found["SUMMARY="] == title.replace(",", "\\,")
    assert found["DESCRIPTION="] == "line one\\nline two\\, with a comma\\; and a semicolon \\\\ backslash"
    assert 'CN="Zoë Z Müller"' in found["ATTENDEE"]


def test_fold_never_splits_a_character() -> None:
    folded = fold("SUMMARY:" + "é" * 100)
    pieces = folded.split(b"\r\n ")
    assert len(pieces) > 1 and all(len(p) <= 75 for p in pieces)
    assert b"".join(pieces).decode("utf-8") == "SUMMARY:" + "é" * 100
    assert fold("SHORT:x") == b"SHORT:x"


def test_invitations_queued_before_the_session_facts_still_render() -> None:
    """Session invites queued by an older workflow carry neither session_uid nor an ISO start."""
    facts = {"client": "Acme", "title": "Walkthrough", "starts_at": "2027-02-10 14:00 UTC", "duration_minutes": 60}
    email = render(
        EmailKind.SESSION_INVITE, facts, LEE, organizer=ORGANIZER, stamped_at=STAMP, default_session_uid="d@e"
    )
    found = properties(content_lines(email.attachments[0].content))
    assert found["UID="] == "d@e" and found["SEQUENCE="] == "0" and found["DTSTART="] == "20270210T140000Z"
    assert "2027-02-10 14:00 UTC" in email.text


def test_a_session_email_needs_its_organizer() -> None:
    facts = sample_facts(EmailKind.SESSION_INVITE, SPEC)
    with pytest.raises(ValueError, match="organizer"):
        render(EmailKind.SESSION_INVITE, facts, LEE)
