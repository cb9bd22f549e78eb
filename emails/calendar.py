"""Calendar invitations (RFC 5545 iCalendar, with the iTIP methods of RFC 5546) for handover sessions.

Pure: the same session, method and stamp always give the same bytes. Mail clients match updates and
cancellations to the invitation they replace by UID, and order them by SEQUENCE, so the UID must stay
the same for one session and the SEQUENCE must grow with every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

PRODUCT_ID = "-//Engagement Office//Engagement Lifecycle//EN"
MAX_LINE_OCTETS = 75
"""RFC 5545 section 3.1: lines longer than this are folded (excluding the CRLF)."""


class CalendarMethod(StrEnum):
    REQUEST = "REQUEST"
    """An invitation, or an update of one (rescheduled): same UID, higher SEQUENCE."""
    CANCEL = "CANCEL"
    """The session will not take place."""


@dataclass(frozen=True)
class Party:
    name: str
    email: str


@dataclass(frozen=True)
class SessionEvent:
    uid: str
    """Stable for one session across invitation, reschedules and cancellation."""
    sequence: int
    """0 for the first invitation, bumped on each reschedule or cancellation."""
    starts_at: datetime
    duration: timedelta
    summary: str
    organizer: Party
    attendee: Party
    """The recipient of this copy of the invitation."""
    description: str | None = None
    other_attendees: tuple[Party, ...] = ()
    """Everyone else invited to the session, so that each copy lists the same attendees."""
    location: str | None = None
    url: str | None = None
    """The link to join online (RFC 5545 URL property)."""


def mime_type(method: CalendarMethod) -> str:
    """The attachment's MIME type: the method parameter lets mail clients offer accept/decline."""
    return f"text/calendar; method={method.value}"


def calendar_invitation(event: SessionEvent, method: CalendarMethod, stamped_at: datetime) -> bytes:
    """One VCALENDAR with one VEVENT for one attendee, as UTF-8 with CRLF line endings."""
    if event.starts_at.tzinfo is None or stamped_at.tzinfo is None:
        raise ValueError("calendar times need a time zone")
    if event.duration <= timedelta(0):
        raise ValueError("a session needs a positive duration")
    if event.sequence < 0:
        raise ValueError("SEQUENCE is a non-negative integer")
    cancelled = method is CalendarMethod.CANCEL

    def attendee(party: Party) -> str:
        params = ["ROLE=REQ-PARTICIPANT", f"CN={_param(party.name)}"]
        if not cancelled:
            params[1:1] = ["PARTSTAT=NEEDS-ACTION", "RSVP=TRUE"]
        return f"ATTENDEE;{';'.join(params)}:mailto:{_address(party.email)}"

    others = [p for p in event.other_attendees if p.email.lower() != event.attendee.email.lower()]
    lines = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODUCT_ID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method.value}",
        "BEGIN:VEVENT",
        f"UID:{_text(event.uid)}",
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{_utc(stamped_at)}",
        f"DTSTART:{_utc(event.starts_at)}",
        f"DTEND:{_utc(event.starts_at + event.duration)}",
        f"SUMMARY:{_text(event.summary)}",
    ]
    if event.description:
        lines.append(f"DESCRIPTION:{_text(event.description)}")
    if event.location:
        lines.append(f"LOCATION:{_text(event.location)}")
    if event.url:
        lines.append(f"URL:{_uri(event.url)}")
    lines += [
        f"ORGANIZER;CN={_param(event.organizer.name)}:mailto:{_address(event.organizer.email)}",
        attendee(event.attendee),
        *(attendee(p) for p in others),
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return b"".join(fold(line) + b"\r\n" for line in lines)


def fold(line: str) -> bytes:
    """Split a content line into chunks of at most 75 octets, continued by CRLF and one space.

    A chunk never ends inside a UTF-8 sequence; continuation lines count their leading space.
    """
    data = line.encode("utf-8")
    chunks: list[bytes] = []
    limit = MAX_LINE_OCTETS
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # do not split a multi-byte character
            cut -= 1
        chunks.append(data[:cut])
        data = data[cut:]
        limit = MAX_LINE_OCTETS - 1  # the continuation line starts with a space
    chunks.append(data)
    return b"\r\n ".join(chunks)


def _text(value: str) -> str:
    """TEXT value escaping (RFC 5545 section 3.3.11)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _param(value: str) -> str:
    """A quoted parameter value: it may hold ':' ';' ',' but never a DQUOTE or a control character."""
    cleaned = "".join(c for c in value if c != '"' and (c == "\t" or ord(c) >= 0x20) and c != "\x7f")
    return f'"{cleaned}"'


def _address(email: str) -> str:
    if any(c.isspace() or c in '"<>;:' for c in email):
        raise ValueError(f"not a plain email address: {email!r}")
    return email


def _uri(value: str) -> str:
    if not value.startswith(("https://", "http://")) or any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in value):
        raise ValueError("a join link must be an http(s) URL without spaces or control characters")
    return value


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
