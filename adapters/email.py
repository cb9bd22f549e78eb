"""Email through one port with two adapters: SendGrid (the official library) and an outbox folder.

The outbox folder is the embedded default: each message is written as a readable ``.eml`` file
that any mail client (or ``cat``) opens.
"""

from __future__ import annotations

import asyncio
import base64
import email.policy
import http.client
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Attachment,
    Category,
    Content,
    CustomArg,
    Disposition,
    FileContent,
    FileName,
    FileType,
    From,
    Header,
    Mail,
    ReplyTo,
    To,
)

from domain.email_kinds import Recipient
from emails.render import Attachment as EmailAttachment
from emails.render import RenderedEmail


@dataclass(frozen=True)
class OutgoingEmail:
    message_key: str
    """Unique per (engagement, step, recipient, occurrence); rides along as a custom arg."""
    kind: str
    to_name: str
    to_email: str
    subject: str
    text: str
    html: str
    attachments: tuple[EmailAttachment, ...] = ()
    template_data: Mapping[str, Any] = field(default_factory=dict)
    """The facts (with the recipient's name and the rendered subject) for a provider-side template."""

    @classmethod
    def rendered(
        cls,
        message_key: str,
        kind: str,
        recipient: Recipient,
        email: RenderedEmail,
        template_data: Mapping[str, Any] | None = None,
    ) -> OutgoingEmail:
        """The message that carries a rendered email to one recipient."""
        return cls(
            message_key=message_key,
            kind=kind,
            to_name=recipient.name,
            to_email=recipient.email,
            subject=email.subject,
            text=email.text,
            html=email.html,
            attachments=tuple(email.attachments),
            template_data=template_data or {},
        )


@dataclass(frozen=True)
class SendReceipt:
    provider: str
    message_id: str | None


class EmailRejected(Exception):
    """The provider refused the message for good (4xx other than 429): retrying cannot help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"email rejected with HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class EmailTemporarilyFailed(Exception):
    """The provider may accept the message later (429, 5xx, network); retry_after when it said so.

    ``ambiguous`` means the request went out and no answer came back (a timeout or a reset while
    waiting for the response): the provider may have accepted the message.
    """

    def __init__(self, detail: str, retry_after: float | None = None, *, ambiguous: bool = False) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class EmailSender(Protocol):
    name: str
    from_email: str
    from_name: str
    idempotent: bool
    """Sending one message key twice delivers it once (a message of unknown outcome is sent again at
    once); otherwise the outcome is reconciled from delivery events first (activities/email.py)."""

    async def send(self, message: OutgoingEmail) -> SendReceipt: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


_SPECIALS = frozenset('()<>[]:;@\\,."')
"""RFC 5322 section 3.2.3: a display name holding any of these must be a quoted-string."""


def _no_controls(text: str, what: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError(f"{what} holds a control character")
    return text


def mailbox(name: str, address: str) -> Address:
    """One mailbox: whatever the display name holds, it quotes as one name and adds no recipient."""
    return Address(display_name=_no_controls(name, "a display name"), addr_spec=_no_controls(address, "an address"))


def quoted_display_name(name: str) -> str:
    """The display name as an RFC 5322 quoted-string when it holds a special (SendGrid builds the
    header from the JSON name without quoting, and splits an unquoted name at ``,`` or ``;``)."""
    _no_controls(name, "a display name")
    if not any(c in _SPECIALS for c in name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def message_id(message_key: str, from_email: str) -> str:
    """RFC 5322 Message-ID, the same for every attempt at one message (its key is unique)."""
    domain = from_email.rpartition("@")[2] or "engagements.invalid"
    return f"<{message_key}@{domain}>"


def mime_message(
    message: OutgoingEmail, from_email: str, from_name: str, *, sent_at: datetime | None = None
) -> EmailMessage:
    """The message as a MIME document: text and HTML alternatives, then the attachments."""
    mime = EmailMessage(policy=email.policy.SMTP)
    mime["Date"] = format_datetime((sent_at or _utc_now()).astimezone(UTC))
    mime["Message-ID"] = message_id(message.message_key, from_email)
    mime["From"] = mailbox(from_name, from_email)
    mime["To"] = mailbox(message.to_name, message.to_email)
    mime["Subject"] = message.subject
    mime["X-Message-Key"] = message.message_key
    mime["X-Email-Kind"] = message.kind
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        media_type, _, parameters = attachment.mime_type.partition(";")
        maintype, _, subtype = media_type.strip().partition("/")
        params = dict(
            (name.strip(), value.strip())
            for name, _, value in (p.partition("=") for p in parameters.split(";") if p.strip())
        )
        mime.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename, params=params
        )
    return mime


class OutboxFolderSender:
    """Writes each message to a folder as an .eml file named after its key (rewriting is harmless)."""

    name = "outbox"
    idempotent = True  # the file is named after the message key: writing it again replaces it

    def __init__(
        self, folder: Path, sender: str, sender_name: str, *, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._folder = folder
        self.from_email = sender
        self.from_name = sender_name
        self._clock = clock

    async def send(self, message: OutgoingEmail) -> SendReceipt:
        mime = mime_message(message, self.from_email, self.from_name, sent_at=self._clock())
        path = self._folder / f"{message.message_key}.eml"
        await asyncio.to_thread(self._write, path, mime.as_bytes())
        return SendReceipt(provider=self.name, message_id=path.name)

    def _write(self, path: Path, data: bytes) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        temporary.replace(path)


class SendGridSender:
    """SendGrid v3 mail send through the official ``sendgrid`` library, with a request timeout.

    With a dynamic template id for a message's kind, SendGrid renders the message from
    ``template_data`` instead of the content rendered here.
    """

    name = "sendgrid"
    idempotent = False

    def __init__(
        self,
        api_key: str,
        sender: str,
        sender_name: str,
        *,
        host: str = "https://api.sendgrid.com",
        reply_to: str | None = None,
        timeout_seconds: float = 10.0,
        template_ids: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=host)
        self._client.client.timeout = timeout_seconds
        self.from_email = sender
        self.from_name = sender_name
        self._reply_to = reply_to
        self._template_ids = dict(template_ids or {})
        self._clock = clock

    def _mail(self, message: OutgoingEmail) -> Mail:
        template_id = self._template_ids.get(message.kind)
        mail = Mail(
            from_email=From(self.from_email, quoted_display_name(self.from_name)),
            to_emails=To(message.to_email, quoted_display_name(message.to_name)),
            subject=None if template_id else message.subject,
        )
        if template_id:
            mail.template_id = template_id
            mail.dynamic_template_data = dict(message.template_data) or {"subject": message.subject}
        else:
            mail.add_content(Content("text/plain", message.text))
            mail.add_content(Content("text/html", message.html))
        for attachment in message.attachments:
            mail.add_attachment(
                Attachment(
                    FileContent(base64.b64encode(attachment.content).decode("ascii")),
                    FileName(attachment.filename),
                    FileType(attachment.mime_type),
                    Disposition("attachment"),
                )
            )
        mail.add_header(Header("Message-ID", message_id(message.message_key, self.from_email)))
        mail.add_header(Header("Date", format_datetime(self._clock().astimezone(UTC))))
        mail.add_category(Category(message.kind))
        mail.add_custom_arg(CustomArg("message_key", message.message_key))
        if self._reply_to:
            mail.reply_to = ReplyTo(self._reply_to)
        return mail

    async def send(self, message: OutgoingEmail) -> SendReceipt:
        mail = self._mail(message)
        try:
            response = await asyncio.to_thread(self._client.send, mail)
        except HTTPError as error:
            raise _classify(error) from None
        except urllib.error.URLError as error:
            # urllib raises URLError while connecting or writing the request: SendGrid never had it.
            raise EmailTemporarilyFailed(f"SendGrid unreachable: {error.reason}") from None
        except (OSError, http.client.HTTPException) as error:
            # The request went out and the answer was lost (timeout, reset, garbled): it may be sent.
            raise EmailTemporarilyFailed(f"SendGrid's answer was lost: {error!r}", ambiguous=True) from None
        return SendReceipt(provider=self.name, message_id=response.headers.get("X-Message-Id"))


def _classify(error: HTTPError) -> Exception:
    """SendGrid's documented answers: 429 waits for X-RateLimit-Reset, 5xx retries, other 4xx never will."""
    status = int(error.status_code)
    body = error.body.decode("utf-8", "replace") if isinstance(error.body, bytes) else str(error.body)
    if status == 429:
        reset = error.headers.get("X-RateLimit-Reset") if error.headers else None
        retry_after = max(0.0, float(reset) - time.time()) if reset and reset.isdigit() else None
        return EmailTemporarilyFailed(f"SendGrid rate limit: {body}", retry_after=retry_after)
    if status >= 500:
        return EmailTemporarilyFailed(f"SendGrid HTTP {status}: {body}")
    return EmailRejected(status, body)
