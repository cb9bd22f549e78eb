"""Headers a careful firm sends: a Date, a Message-ID stable per message key, and display names
that can never add a recipient, in the outbox's .eml and through SendGrid alike."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.email import OutboxFolderSender, OutgoingEmail, SendGridSender, mime_message, quoted_display_name
from tests.sendgrid_peer import SendGridPeer

SENDER = "engagements@firm.example"
AT = datetime(2027, 2, 1, 12, 0, 5, tzinfo=UTC)
HOSTILE = ["Eve <eve@evil.example>, Sam", 'Sam "the boss" <x@y>; Eve', "a\\b, c", "Zoë, Müller (ops)", '"', "@,;:"]

# Any printable text a display name might hold (control characters are refused before any header).
names = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=60).filter(str.strip)


def message(to_name: str, key: str = "k" * 40) -> OutgoingEmail:
    return OutgoingEmail(
        message_key=key,
        kind="nda_request",
        to_name=to_name,
        to_email="sam@acme.example",
        subject="S",
        text="t",
        html="h",
    )


def only_recipient(header_values: list[str]) -> list[str]:
    return [address for _, address in getaddresses(header_values)]


@settings(max_examples=150, deadline=None)
@given(to_name=names, from_name=names)
def test_no_display_name_adds_a_recipient_to_the_eml(to_name: str, from_name: str) -> None:
    raw = mime_message(message(to_name), SENDER, from_name, sent_at=AT).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert only_recipient([str(parsed["To"])]) == ["sam@acme.example"]
    assert only_recipient([str(parsed["From"])]) == [SENDER]
    assert [a.addr_spec for a in parsed["To"].addresses] == ["sam@acme.example"]


@settings(max_examples=150, deadline=None)
@given(to_name=names)
def test_no_display_name_adds_a_recipient_through_sendgrid(to_name: str) -> None:
    """SendGrid pastes the JSON name into the header as it is: the quoted name must parse as one mailbox."""
    header = f"{quoted_display_name(to_name)} <sam@acme.example>"
    assert only_recipient([header]) == ["sam@acme.example"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_one_mailbox(name: str) -> None:
    raw = mime_message(message(name), SENDER, name, sent_at=AT).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    [to] = parsed["To"].addresses
    assert to.addr_spec == "sam@acme.example" and to.display_name == name
    if "," in name and name.isascii():
        assert b'To: "' in raw  # quoted as one display name


@pytest.mark.parametrize("name", ["Sam\r\nBcc: eve@evil.example", "Sam\nBcc: eve@evil.example", "a\x00b"])
def test_a_name_with_a_line_break_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        mime_message(message(name), SENDER, "Office", sent_at=AT)
    with pytest.raises(ValueError, match="control character"):
        quoted_display_name(name)


async def test_the_eml_carries_date_and_a_message_id_stable_per_key(tmp_path: Path) -> None:
    sender = OutboxFolderSender(tmp_path, SENDER, "Engagement Office", clock=lambda: AT)
    await sender.send(message("Sam", key="a" * 40))
    first = email.message_from_bytes((tmp_path / f"{'a' * 40}.eml").read_bytes(), policy=email.policy.default)
    await sender.send(message("Sam", key="a" * 40))
    again = email.message_from_bytes((tmp_path / f"{'a' * 40}.eml").read_bytes(), policy=email.policy.default)
    await sender.send(message("Sam", key="b" * 40))
    other = email.message_from_bytes((tmp_path / f"{'b' * 40}.eml").read_bytes(), policy=email.policy.default)

    assert first["Message-ID"] == again["Message-ID"] == f"<{'a' * 40}@firm.example>"
    assert other["Message-ID"] != first["Message-ID"]
    assert parsedate_to_datetime(str(first["Date"])) == AT


async def test_sendgrid_carries_date_and_message_id_and_quotes_names() -> None:
    with SendGridPeer() as peer:
        sender = SendGridSender(peer.api_key, SENDER, "Office, Lisbon", host=peer.host, clock=lambda: AT)
        await sender.send(message("Eve <eve@evil.example>, Sam", key="c" * 40))
        [accepted] = peer.received
    payload = accepted.payload
    assert payload["headers"]["Message-ID"] == f"<{'c' * 40}@firm.example>"
    assert parsedate_to_datetime(payload["headers"]["Date"]) == AT
    [to] = payload["personalizations"][0]["to"]
    assert only_recipient([f"{to['name']} <{to['email']}>"]) == ["sam@acme.example"]
    assert only_recipient([f"{payload['from']['name']} <{payload['from']['email']}>"]) == [SENDER]


def test_the_peer_refuses_what_sendgrid_refuses() -> None:
    from tests.sendgrid_peer import ValidationError, validate_mail

    base = {
        "personalizations": [{"to": [{"email": "sam@acme.example", "name": "Sam, Eve"}]}],
        "from": {"email": SENDER},
        "subject": "S",
        "content": [{"type": "text/plain", "value": "t"}],
    }
    with pytest.raises(ValidationError, match="cannot contain"):
        validate_mail(base)
    base["personalizations"][0]["to"][0]["name"] = '"Sam, Eve"'  # type: ignore[index]
    validate_mail(base)
    with pytest.raises(ValidationError, match="reserved"):
        validate_mail({**base, "headers": {"Bcc": "eve@evil.example"}})
