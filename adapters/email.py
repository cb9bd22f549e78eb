"""Email through one port with two adapters: SendGrid (the official library) and an outbox folder.

The outbox folder is the embedded default: each message is written as a readable ``.eml`` file
that any mail client (or ``cat``) opens.
"""

from __future__ import annotations

import asyncio
import email.policy
import http.client
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    Category,
    Content,
    CustomArg,
    From,
    Mail,
    ReplyTo,
    To,
)


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
    """The provider may accept the message later (429, 5xx, network); retry_after when it said so."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class EmailSender(Protocol):
    name: str

    async def send(self, message: OutgoingEmail) -> SendReceipt: ...


class OutboxFolderSender:
    """Writes each message to a folder as an .eml file named after its key (rewriting is harmless)."""

    name = "outbox"

    def __init__(self, folder: Path, sender: str, sender_name: str) -> None:
        self._folder = folder
        self._sender = sender
        self._sender_name = sender_name

    async def send(self, message: OutgoingEmail) -> SendReceipt:
        mime = EmailMessage(policy=email.policy.SMTP)
        mime["From"] = f"{self._sender_name} <{self._sender}>"
        mime["To"] = f"{message.to_name} <{message.to_email}>"
        mime["Subject"] = message.subject
        mime["X-Message-Key"] = message.message_key
        mime["X-Email-Kind"] = message.kind
        mime.set_content(message.text)
        mime.add_alternative(message.html, subtype="html")
        path = self._folder / f"{message.message_key}.eml"
        await asyncio.to_thread(self._write, path, mime.as_bytes())
        return SendReceipt(provider=self.name, message_id=path.name)

    def _write(self, path: Path, data: bytes) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        temporary.replace(path)


class SendGridSender:
    """SendGrid v3 mail send through the official ``sendgrid`` library, with a request timeout."""

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        sender: str,
        sender_name: str,
        *,
        host: str = "https://api.sendgrid.com",
        reply_to: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=host)
        self._client.client.timeout = timeout_seconds
        self._sender = sender
        self._sender_name = sender_name
        self._reply_to = reply_to

    def _mail(self, message: OutgoingEmail) -> Mail:
        mail = Mail(
            from_email=From(self._sender, self._sender_name),
            to_emails=To(message.to_email, message.to_name),
            subject=message.subject,
        )
        mail.add_content(Content("text/plain", message.text))
        mail.add_content(Content("text/html", message.html))
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
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timeout, garbled reply
            raise EmailTemporarilyFailed(f"SendGrid unreachable: {error}") from None
        return SendReceipt(provider=self.name, message_id=response.headers.get("X-Message-Id"))


def _classify(error: HTTPError) -> Exception:
    status = int(error.status_code)
    body = error.body.decode("utf-8", "replace") if isinstance(error.body, bytes) else str(error.body)
    if status == 429:
        reset = error.headers.get("X-RateLimit-Reset") if error.headers else None
        retry_after = max(0.0, float(reset) - time.time()) if reset and reset.isdigit() else None
        return EmailTemporarilyFailed(f"SendGrid rate limit: {body}", retry_after=retry_after)
    if status >= 500:
        return EmailTemporarilyFailed(f"SendGrid HTTP {status}: {body}")
    return EmailRejected(status, body)
