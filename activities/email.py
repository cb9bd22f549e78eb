"""The email activity: render, claim the message's outbox row, hand it to the sender once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.email import EmailRejected, EmailSender, EmailTemporarilyFailed, OutgoingEmail
from adapters.outbox import OutboxStore
from domain.emails import EmailKind, Recipient, message_key, render


class EmailRequest(BaseModel):
    engagement_id: str
    kind: EmailKind
    step: str
    """Names the lifecycle step; with the occurrence it makes each message unique."""
    occurrence: int
    recipients: list[Recipient]
    facts: dict[str, Any]


class EmailOutcome(BaseModel):
    sent: list[str]
    """Recipients the message was handed to (now or on an earlier attempt)."""
    failed: list[str]
    """Recipients the provider refused for good; recorded as failed, the engagement carries on."""


class EmailActivities:
    def __init__(self, outbox: OutboxStore, mailer: EmailSender) -> None:
        self._outbox = outbox
        self._mailer = mailer

    @activity.defn(name="send_email")
    async def send_email(self, request: EmailRequest) -> EmailOutcome:
        outcome = EmailOutcome(sent=[], failed=[])
        for recipient in request.recipients:
            rendered = render(request.kind, request.facts, recipient)
            key = message_key(request.engagement_id, request.step, recipient.email, request.occurrence)
            row = await self._outbox.claim_message(
                {
                    "message_key": key,
                    "engagement_id": request.engagement_id,
                    "step": request.step,
                    "kind": request.kind.value,
                    "recipient": recipient.email.lower(),
                    "occurrence": request.occurrence,
                    "subject": rendered.subject,
                    "body_text": rendered.text,
                    "body_html": rendered.html,
                }
            )
            if row.state == "sent":
                outcome.sent.append(recipient.email)
                continue
            if row.state == "failed":
                outcome.failed.append(recipient.email)
                continue
            message = OutgoingEmail(
                message_key=key,
                kind=request.kind.value,
                to_name=recipient.name,
                to_email=recipient.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
            )
            try:
                receipt = await self._mailer.send(message)
            except EmailRejected as error:
                await self._outbox.mark_message(key, state="failed", provider=self._mailer.name, error=error.detail)
                activity.logger.error("email %s to a recipient was rejected: %s", request.kind, error)
                outcome.failed.append(recipient.email)
                continue
            except EmailTemporarilyFailed as error:
                raise ApplicationError(
                    str(error),
                    type="EmailTemporarilyFailed",
                    next_retry_delay=timedelta(seconds=error.retry_after) if error.retry_after else None,
                ) from None
            await self._outbox.mark_message(
                key, state="sent", provider=receipt.provider, provider_message_id=receipt.message_id
            )
            outcome.sent.append(recipient.email)
        return outcome

    def all(self) -> list[Any]:
        return [self.send_email]
