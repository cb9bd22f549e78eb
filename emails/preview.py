"""A preview of any email of a spec, rendered from representative facts and never sent."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.email import OutgoingEmail, mailbox, mime_message
from domain.email_kinds import EmailKind, Recipient, people
from domain.spec import EngagementSpec
from emails.render import render
from emails.samples import sample_facts, sample_recipient


class UnknownRecipient(ValueError):
    """The preview was asked for someone the spec does not name."""


def preview_email(
    spec: EngagementSpec,
    kind: EmailKind,
    recipient_email: str | None,
    output: str,
    sender: Recipient,
) -> str:
    """One email of the spec rendered from representative facts (``sample_facts``), never sent."""
    if recipient_email is None:
        recipient = sample_recipient(kind, spec)
    else:
        known = {p.email.lower(): p for p in people(spec)}
        found = known.get(recipient_email.lower())
        if found is None:
            raise UnknownRecipient(f"{recipient_email} is not a contact or engineer of {spec.contract_id}")
        recipient = found
    rendered = render(kind, sample_facts(kind, spec), recipient, organizer=sender, stamped_at=datetime.now(UTC))
    if output == "html":
        return rendered.html
    message = OutgoingEmail.rendered("preview", kind.value, recipient, rendered)
    if output == "eml":
        return mime_message(message, sender.email, sender.name).as_string()
    lines = [
        f"From: {mailbox(sender.name, sender.email)}",
        f"To: {mailbox(recipient.name, recipient.email)}",
        f"Subject: {rendered.subject}",
        *(f"Attachment: {a.filename} ({a.mime_type}, {len(a.content)} bytes)" for a in rendered.attachments),
        "",
        rendered.text,
    ]
    return "\n".join(lines) + "\n"
