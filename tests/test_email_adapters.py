"""The email adapters against real peers: the official ``sendgrid`` client talking HTTP to a loopback
SendGrid peer, the outbox folder on disk, and the ``send_email`` activity over PostgreSQL."""

from __future__ import annotations

import base64
import dataclasses
import email.policy
import json
import uuid
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities, EmailRequest
from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.email import (
    EmailRejected,
    EmailTemporarilyFailed,
    OutboxFolderSender,
    OutgoingEmail,
    SendGridSender,
)
from adapters.outbox import OutboxStore
from domain.email_kinds import EmailKind, Recipient, message_key
from emails.render import Attachment
from tests.sendgrid_peer import SendGridPeer, error_body

SENDER = "engagements@firm.example"
SENDER_NAME = "Firm Engagements"


def sendgrid(peer: SendGridPeer, timeout_seconds: float = 5.0) -> SendGridSender:
    return SendGridSender(peer.api_key, SENDER, SENDER_NAME, host=peer.host, timeout_seconds=timeout_seconds)


def outgoing(key: str | None = None, subject: str = "Acme Corp: please sign the NDA") -> OutgoingEmail:
    return OutgoingEmail(
        message_key=key or uuid.uuid4().hex,
        kind=EmailKind.NDA_REQUEST.value,
        to_name="Sam Signer",
        to_email="sam@acme.example",
        subject=subject,
        text="Dear Sam,\n\nPlease sign the NDA.",
        html="<html><body><p>Dear Sam,</p><p>Please sign the NDA.</p></body></html>",
    )


# ---------------------------------------------------------------- SendGridSender over HTTP


async def test_sendgrid_delivers_message(peer: SendGridPeer) -> None:
    message = outgoing()
    receipt = await sendgrid(peer).send(message)

    [accepted] = peer.received
    assert accepted.method == "POST"
    assert accepted.path == "/v3/mail/send"
    assert accepted.headers["authorization"] == f"Bearer {peer.api_key}"
    payload = accepted.payload
    assert payload["from"] == {"email": SENDER, "name": SENDER_NAME}
    assert payload["personalizations"][0]["to"] == [{"email": "sam@acme.example", "name": "Sam Signer"}]
    assert payload["subject"] == message.subject
    assert payload["content"] == [
        {"type": "text/plain", "value": message.text},
        {"type": "text/html", "value": message.html},
    ]
    assert payload["custom_args"] == {"message_key": message.message_key}
    assert payload["categories"] == [message.kind]
    assert receipt.provider == "sendgrid"
    assert receipt.message_id is not None
    assert receipt.message_id == accepted.message_id


async def test_sendgrid_message_ids_are_unique(peer: SendGridPeer) -> None:
    sender = sendgrid(peer)
    first = await sender.send(outgoing())
    second = await sender.send(outgoing())
    assert first.message_id != second.message_id
    assert [r.message_id for r in peer.received] == [first.message_id, second.message_id]


async def test_sendgrid_rate_limit_is_temporary_with_retry_after(peer: SendGridPeer) -> None:
    peer.rate_limit_next(reset_in_seconds=30)
    with pytest.raises(EmailTemporarilyFailed) as caught:
        await sendgrid(peer).send(outgoing())
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 31
    [refused] = peer.requests
    assert refused.status == 429
    assert peer.received == []


@pytest.mark.parametrize("status", [500, 503])
async def test_sendgrid_server_error_is_temporary(peer: SendGridPeer, status: int) -> None:
    peer.fail_next(status)
    with pytest.raises(EmailTemporarilyFailed, match=str(status)):
        await sendgrid(peer).send(outgoing())
    assert peer.received == []


async def test_sendgrid_recovers_after_a_server_error(peer: SendGridPeer) -> None:
    peer.fail_next(503)
    sender = sendgrid(peer)
    with pytest.raises(EmailTemporarilyFailed):
        await sender.send(outgoing())
    receipt = await sender.send(outgoing())
    assert [r.message_id for r in peer.received] == [receipt.message_id]


async def test_sendgrid_connection_refused_is_temporary() -> None:
    peer = SendGridPeer().start()
    sender = sendgrid(peer)
    peer.stop()  # the port is closed now
    with pytest.raises(EmailTemporarilyFailed, match="unreachable"):
        await sender.send(outgoing())


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (400, "Does not contain a valid address."),
        (401, "The provided authorization grant is invalid, expired, or revoked"),
        (403, "access forbidden"),
        (413, "payload too large"),
    ],
)
async def test_sendgrid_client_error_is_rejected(peer: SendGridPeer, status: int, text: str) -> None:
    peer.fail_next(status, body=error_body(text, "personalizations.0.to.0.email" if status == 400 else None))
    with pytest.raises(EmailRejected) as caught:
        await sendgrid(peer).send(outgoing())
    assert caught.value.status == status
    assert text in caught.value.detail
    assert json.loads(caught.value.detail)["errors"][0]["message"] == text


async def test_sendgrid_wrong_api_key_is_rejected_by_the_peer(peer: SendGridPeer) -> None:
    sender = SendGridSender("SG.wrong", SENDER, SENDER_NAME, host=peer.host, timeout_seconds=5)
    with pytest.raises(EmailRejected) as caught:
        await sender.send(outgoing())
    assert caught.value.status == 401
    assert "authorization grant is invalid" in caught.value.detail


async def test_sendgrid_invalid_recipient_is_rejected_by_the_peer(peer: SendGridPeer) -> None:
    bad = OutgoingEmail(**{**outgoing().__dict__, "to_email": "not-an-address"})
    with pytest.raises(EmailRejected) as caught:
        await sendgrid(peer).send(bad)
    assert caught.value.status == 400
    assert json.loads(caught.value.detail)["errors"][0]["field"] == "personalizations.0.to.0.email"


async def test_sendgrid_slow_answer_times_out_as_temporary(peer: SendGridPeer) -> None:
    peer.delay_next(2.0)
    with pytest.raises(EmailTemporarilyFailed) as caught:
        await sendgrid(peer, timeout_seconds=0.5).send(outgoing())
    # The request went out and its answer was lost: SendGrid may have the message.
    assert caught.value.ambiguous


async def test_sendgrid_refused_connection_is_not_ambiguous() -> None:
    peer = SendGridPeer().start()
    sender = sendgrid(peer)
    peer.stop()
    with pytest.raises(EmailTemporarilyFailed) as caught:
        await sender.send(outgoing())
    assert not caught.value.ambiguous


@pytest.mark.parametrize("status", [429, 500])
async def test_sendgrid_answers_are_not_ambiguous(peer: SendGridPeer, status: int) -> None:
    peer.fail_next(status)
    with pytest.raises(EmailTemporarilyFailed) as caught:
        await sendgrid(peer).send(outgoing())
    assert not caught.value.ambiguous


def with_invitation(message: OutgoingEmail) -> OutgoingEmail:
    ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    invite = Attachment(filename="invite.ics", mime_type="text/calendar; method=REQUEST", content=ics)
    return dataclasses.replace(message, attachments=(invite,))


async def test_sendgrid_carries_attachments(peer: SendGridPeer) -> None:
    message = with_invitation(outgoing())
    await sendgrid(peer).send(message)

    [accepted] = peer.received
    [attachment] = accepted.payload["attachments"]
    assert attachment["filename"] == "invite.ics"
    assert attachment["type"] == "text/calendar; method=REQUEST"
    assert attachment["disposition"] == "attachment"
    assert base64.b64decode(attachment["content"]) == message.attachments[0].content


async def test_sendgrid_dynamic_template_for_a_kind(peer: SendGridPeer) -> None:
    template_id = f"d-{uuid.uuid4().hex}"
    sender = SendGridSender(
        peer.api_key,
        SENDER,
        SENDER_NAME,
        host=peer.host,
        timeout_seconds=5,
        template_ids={EmailKind.NDA_REQUEST.value: template_id},
    )
    data = {"client": "Acme Corp", "deadline": "2026-12-15T09:00:00+00:00", "name": "Sam", "subject": "Sign"}
    message = dataclasses.replace(outgoing(), template_data=data)
    await sender.send(message)
    await sender.send(dataclasses.replace(message, kind=EmailKind.NDA_REMINDER.value))

    templated, plain = (r.payload for r in peer.received)
    assert templated["template_id"] == template_id
    assert templated["personalizations"][0]["dynamic_template_data"] == data
    assert "content" not in templated and "subject" not in templated
    assert templated["custom_args"] == {"message_key": message.message_key}
    assert templated["categories"] == [EmailKind.NDA_REQUEST.value]
    assert "template_id" not in plain and plain["subject"] == message.subject


async def test_sendgrid_peer_refuses_a_bad_attachment(peer: SendGridPeer) -> None:
    bad = dataclasses.replace(outgoing(), attachments=(Attachment(filename="", mime_type="text/plain", content=b"x"),))
    with pytest.raises(EmailRejected) as caught:
        await sendgrid(peer).send(bad)
    assert json.loads(caught.value.detail)["errors"][0]["field"] == "attachments.0.filename"


# ---------------------------------------------------------------- OutboxFolderSender on disk


def read_eml(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        parsed = BytesParser(policy=email.policy.default).parse(handle)
    assert isinstance(parsed, EmailMessage)
    return parsed


def file_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_outbox_folder_writes_readable_eml(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    message = outgoing()
    receipt = await OutboxFolderSender(folder, SENDER, SENDER_NAME).send(message)

    path = folder / f"{message.message_key}.eml"
    assert receipt.provider == "outbox"
    assert receipt.message_id == path.name
    parsed = read_eml(path)
    assert parsed["From"] == f"{SENDER_NAME} <{SENDER}>"
    assert parsed["To"] == "Sam Signer <sam@acme.example>"
    assert parsed["Subject"] == message.subject
    assert parsed["X-Message-Key"] == message.message_key
    assert parsed["X-Email-Kind"] == message.kind
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().strip() == message.text
    assert html.get_content().strip() == message.html


async def test_outbox_folder_writes_attachments_as_mime_parts(tmp_path: Path) -> None:
    message = with_invitation(outgoing())
    await OutboxFolderSender(tmp_path, SENDER, SENDER_NAME).send(message)

    parsed = read_eml(tmp_path / f"{message.message_key}.eml")
    assert parsed.get_content_type() == "multipart/mixed"
    [part] = list(parsed.iter_attachments())
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == "REQUEST"
    assert part.get_filename() == "invite.ics"
    assert part.get_content() in (message.attachments[0].content, message.attachments[0].content.decode())
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None and plain.get_content().strip() == message.text


async def test_outbox_folder_rewrites_same_key(tmp_path: Path) -> None:
    sender = OutboxFolderSender(tmp_path, SENDER, SENDER_NAME)
    key = uuid.uuid4().hex
    await sender.send(outgoing(key, subject="first"))
    await sender.send(outgoing(key, subject="second"))

    assert file_names(tmp_path) == [f"{key}.eml"]
    assert read_eml(tmp_path / f"{key}.eml")["Subject"] == "second"


# ---------------------------------------------------------------- the send_email activity


SIGNATORY = Recipient(name="Sam Signer", email="sam@acme.example")
MANAGER = Recipient(name="Erin Manager", email="Erin@Acme.example")
NDA_FACTS: dict[str, Any] = {
    "client": "Acme Corp",
    "contract_id": "ACME-1",
    "nda_reference": "NDA-ACME-7",
    "ip_assignment_clause": "MSA section 9.2",
    "deadline": "2026-12-15",
}


def nda_request(*recipients: Recipient) -> EmailRequest:
    return EmailRequest(
        engagement_id=f"eng-{uuid.uuid4().hex}",
        kind=EmailKind.NDA_REQUEST,
        step="nda_request",
        occurrence=1,
        recipients=list(recipients),
        facts=NDA_FACTS,
    )


def email_activities(store: EngagementStore, peer: SendGridPeer) -> EmailActivities:
    return EmailActivities(OutboxStore(store.engine), sendgrid(peer))


def key_of(request: EmailRequest, recipient: Recipient) -> str:
    return message_key(request.engagement_id, request.step, recipient.email, request.occurrence)


async def test_send_email_activity_never_sends_twice(store: EngagementStore, peer: SendGridPeer) -> None:
    activities = email_activities(store, peer)
    request = nda_request(SIGNATORY, MANAGER)

    first = await ActivityEnvironment().run(activities.send_email, request)
    second = await ActivityEnvironment().run(activities.send_email, request)

    expected = [SIGNATORY.email, MANAGER.email]
    assert first.sent == expected and first.failed == []
    assert second.sent == expected and second.failed == []
    received = peer.received
    assert sorted(r.payload["personalizations"][0]["to"][0]["email"] for r in received) == sorted(expected)
    ids_by_key = {r.payload["custom_args"]["message_key"]: r.message_id for r in received}
    assert set(ids_by_key) == {key_of(request, SIGNATORY), key_of(request, MANAGER)}

    rows = await OutboxStore(store.engine).outbox(request.engagement_id)
    assert len(rows) == 2
    for row in rows:
        assert row.state == "sent"
        assert row.provider == "sendgrid"
        assert row.provider_message_id == ids_by_key[row.message_key]
        assert row.attempts == 1
        assert row.sent_at is not None


async def test_send_email_activity_records_rejection_and_carries_on(store: EngagementStore, peer: SendGridPeer) -> None:
    activities = email_activities(store, peer)
    request = nda_request(SIGNATORY, MANAGER)
    peer.refuse_address(
        SIGNATORY.email, 400, body=error_body("Does not contain a valid address.", "personalizations.0.to.0.email")
    )

    outcome = await ActivityEnvironment().run(activities.send_email, request)
    assert outcome.failed == [SIGNATORY.email]
    assert outcome.sent == [MANAGER.email]

    rows = {row.message_key: row for row in await OutboxStore(store.engine).outbox(request.engagement_id)}
    failed = rows[key_of(request, SIGNATORY)]
    assert failed.state == "failed"
    assert "Does not contain a valid address." in failed.error
    assert failed.provider_message_id is None
    sent = rows[key_of(request, MANAGER)]
    assert sent.state == "sent"
    assert sent.provider_message_id == peer.received[0].message_id

    [alert] = await AlertStore(store.engine).alerts(request.engagement_id)
    assert alert.kind == "email_rejected" and alert.alert_key == f"email-rejected:{key_of(request, SIGNATORY)}"
    assert "Does not contain a valid address." in alert.message
    assert alert.details["status"] == 400 and alert.details["kind"] == "nda_request"

    # A retry of the activity neither resends the refused message nor the delivered one, nor alerts twice.
    again = await ActivityEnvironment().run(activities.send_email, request)
    assert again == outcome
    assert len(peer.requests) == 2
    assert len(await AlertStore(store.engine).alerts(request.engagement_id)) == 1


@pytest.mark.parametrize("status", [401, 403, 413])
async def test_send_email_activity_records_every_refusal_sendgrid_documents(
    store: EngagementStore, peer: SendGridPeer, status: int
) -> None:
    request = nda_request(SIGNATORY)
    peer.fail_next(status)

    outcome = await ActivityEnvironment().run(email_activities(store, peer).send_email, request)

    assert outcome.failed == [SIGNATORY.email] and outcome.sent == []
    [row] = await OutboxStore(store.engine).outbox(request.engagement_id)
    assert row.state == "failed"
    assert json.loads(row.error)["errors"][0]["message"]
    [alert] = await AlertStore(store.engine).alerts(request.engagement_id)
    assert alert.details["status"] == status


async def test_send_email_activity_rate_limited_raises_retryable(store: EngagementStore, peer: SendGridPeer) -> None:
    activities = email_activities(store, peer)
    request = nda_request(SIGNATORY)
    peer.rate_limit_next(reset_in_seconds=30)

    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(activities.send_email, request)
    assert caught.value.type == "EmailTemporarilyFailed"
    assert not caught.value.non_retryable
    assert caught.value.next_retry_delay is not None
    assert caught.value.next_retry_delay.total_seconds() > 0
    [row] = await OutboxStore(store.engine).outbox(request.engagement_id)
    assert row.state == "pending"
    assert row.provider_message_id is None
    assert peer.received == []

    # The retry, once the limit resets, sends the still-pending message exactly once.
    outcome = await ActivityEnvironment().run(activities.send_email, request)
    assert outcome.sent == [SIGNATORY.email]
    [row] = await OutboxStore(store.engine).outbox(request.engagement_id)
    [accepted] = peer.received
    assert row.state == "sent"
    assert row.provider_message_id == accepted.message_id
