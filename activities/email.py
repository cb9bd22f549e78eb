"""The email activity: render, claim the message's outbox row, hand it to the sender once in effect.

Each recipient's message has a row keyed by its message key, moved ``pending → sending → sent`` (or
``failed``). Before the HTTP call the row says ``sending``; a retry that finds it there cannot know
whether the provider took the message (the worker may have died after the provider's 202), so the
row becomes ``unknown`` and is reconciled from SendGrid's delivery events: any event for the key
proves it was sent. Without any event the activity waits, retrying, for the reconciliation window,
and only then sends again. That last step is the deliberate at-least-once fallback: a message that
may be a duplicate beats a lost contractual notice, and the window makes a duplicate unlikely.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.alerts import AlertStore
from adapters.certification_links import LinkSigner
from adapters.email import EmailRejected, EmailSender, EmailTemporarilyFailed, OutgoingEmail
from adapters.outbox import OutboxStore
from domain.delivery import HANDED_OVER, MessageState
from domain.email_kinds import EmailKind, Recipient, message_key
from emails.render import RenderedEmail, render


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


RECIPIENTS_AT_ONCE = 4
"""Messages of one email handed over together: SendGrid's answers (a round trip over the internet
each) are waited for side by side, not one after another; each message holds one database
connection at a time."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Wait(Exception):
    """This recipient's message has an unknown outcome and no delivery event yet: ask again later."""

    def __init__(self, delay: timedelta) -> None:
        super().__init__(f"waiting {delay} for delivery events")
        self.delay = delay


class EmailActivities:
    def __init__(
        self,
        outbox: OutboxStore,
        mailer: EmailSender,
        *,
        alerts: AlertStore | None = None,
        reconciliation_window: timedelta = timedelta(minutes=10),
        reconciliation_poll: timedelta = timedelta(seconds=30),
        clock: Callable[[], datetime] = _utc_now,
        links: LinkSigner | None = None,
    ) -> None:
        """``alerts`` defaults to the admin alerts in the outbox's database; ``clock`` is for tests;
        ``links`` signs access certification links (CERTIFICATION_KEY)."""
        self._links = links
        self._outbox = outbox
        self._mailer = mailer
        self._alerts = alerts or AlertStore(outbox.engine)
        self._window = reconciliation_window
        self._poll = reconciliation_poll
        self._clock = clock

    @activity.defn(name="send_email")
    async def send_email(self, request: EmailRequest) -> EmailOutcome:
        """Each recipient's message is handed over at once, up to ``RECIPIENTS_AT_ONCE`` together: every
        one is settled (sent, refused, waiting, or failed and left to the retry) before the first failure,
        in recipient order, fails the attempt; a message is never cut off between "sending" and its answer."""
        request = self._with_link(request)
        outcome = EmailOutcome(sent=[], failed=[])
        waits: list[timedelta] = []
        at_once = asyncio.Semaphore(RECIPIENTS_AT_ONCE)

        async def deliver(recipient: Recipient) -> bool:
            async with at_once:
                return await self._deliver(request, recipient)

        # One message per address: the same address twice would race for its one outbox row.
        unique: dict[str, Recipient] = {}
        for r in request.recipients:
            unique.setdefault(r.email.lower(), r)
        settled = await asyncio.gather(*(deliver(r) for r in unique.values()), return_exceptions=True)
        by_address = dict(zip(unique, settled, strict=True))
        for recipient in request.recipients:
            result = by_address[recipient.email.lower()]
            if isinstance(result, _Wait):
                waits.append(result.delay)
            elif isinstance(result, BaseException):
                raise result
            else:
                (outcome.sent if result else outcome.failed).append(recipient.email)
        if waits:
            raise ApplicationError(
                f"{len(waits)} message(s) of unknown outcome: waiting for SendGrid's delivery events",
                type="EmailOutcomeUnknown",
                next_retry_delay=min(waits),
            )
        return outcome

    async def _deliver(self, request: EmailRequest, recipient: Recipient) -> bool:
        """Hand one recipient's message over unless it was already; True if sent, False if refused."""
        key = message_key(request.engagement_id, request.step, recipient.email, request.occurrence)
        rendered = self._render(request, recipient, key)
        text, html = _for_the_record(request, rendered)
        row, claimed = await self._outbox.claim_for_sending(
            {
                "message_key": key,
                "engagement_id": request.engagement_id,
                "step": request.step,
                "kind": request.kind.value,
                "recipient": recipient.email.lower(),
                "occurrence": request.occurrence,
                "subject": rendered.subject,
                "body_text": text,
                "body_html": html,
            },
            provider=self._mailer.name,
        )
        if claimed:  # new, and recorded as being handed over by this attempt
            return await self._send(request, recipient, key, rendered)
        for _ in range(5):  # each pass either finishes or follows a row another writer just moved
            state = MessageState(row.state)
            if state in HANDED_OVER:
                return True
            if state is MessageState.FAILED:
                # Raised again in case an earlier attempt died between recording and alerting.
                await self._alert_rejected(request, recipient, key, row.error or "refused")
                return False
            if state is MessageState.SENDING:
                # An earlier attempt recorded "sending" and never came back: the provider may have it.
                await self._outbox.mark_unknown(key, at=self._clock())
            elif state is MessageState.UNKNOWN and await self._may_send_again(key, row.unknown_since):
                if await self._outbox.begin_sending(key, from_state=state, provider=self._mailer.name):
                    activity.logger.warning(
                        "resending %s message %s: no delivery event within %s (at-least-once fallback)",
                        request.kind.value,
                        key,
                        self._window,
                    )
                    return await self._send(request, recipient, key, rendered)
            elif state is MessageState.PENDING and await self._outbox.begin_sending(
                key, from_state=state, provider=self._mailer.name
            ):
                return await self._send(request, recipient, key, rendered)
            row = await self._outbox.message(key)
        raise ApplicationError(f"message {key} keeps changing state under this attempt", type="EmailStateContended")

    async def _may_send_again(self, key: str, unknown_since: datetime | None) -> bool:
        """For a message of unknown outcome: settle it from delivery events, wait, or (past the window) resend.
        A sender that delivers a message key once however often it is given it is simply given it again."""
        if self._mailer.idempotent:
            return True
        if await self._outbox.settle_from_events(key) is not None:
            return False  # an event proves it was sent; the next pass sees the settled row
        waited = self._clock() - (unknown_since or self._clock())
        if waited < self._window:
            raise _Wait(min(self._window - waited, self._poll))
        return True

    async def _send(self, request: EmailRequest, recipient: Recipient, key: str, rendered: RenderedEmail) -> bool:
        message = OutgoingEmail.rendered(
            key,
            request.kind.value,
            recipient,
            rendered,
            template_data={**request.facts, "name": recipient.name, "subject": rendered.subject},
        )
        try:
            receipt = await self._mailer.send(message)
        except EmailRejected as error:
            await self._outbox.mark_failed(key, provider=self._mailer.name, error=error.detail)
            activity.logger.error("email %s to a recipient was rejected: %s", request.kind, error)
            await self._alert_rejected(request, recipient, key, error.detail, status=error.status)
            return False
        except EmailTemporarilyFailed as error:
            if error.ambiguous:
                await self._outbox.mark_unknown(key, at=self._clock(), error=str(error))
                raise ApplicationError(
                    f"{error}; the outcome is reconciled from delivery events",
                    type="EmailOutcomeUnknown",
                    next_retry_delay=min(self._window, self._poll),
                ) from None
            await self._outbox.release(key, error=str(error))
            raise ApplicationError(
                str(error),
                type="EmailTemporarilyFailed",
                next_retry_delay=timedelta(seconds=error.retry_after) if error.retry_after else None,
            ) from None
        await self._outbox.mark_sent(key, provider=receipt.provider, provider_message_id=receipt.message_id)
        return True

    def _with_link(self, request: EmailRequest) -> EmailRequest:
        """An access certification email gets its signed link here: the key never enters a workflow.
        The link expires at the round's due date, so every attempt signs the very same link."""
        if request.kind is not EmailKind.ACCESS_CERTIFICATION:
            return request
        if self._links is None:
            raise ApplicationError(
                "CERTIFICATION_KEY and CERTIFICATION_BASE_URL are not set: no certification link can be signed",
                type="CertificationLinkUnavailable",
                non_retryable=True,
            )
        due = datetime.fromisoformat(str(request.facts["due_at"]))
        link = self._links.link(request.engagement_id, int(request.facts["round"]), due)
        return request.model_copy(update={"facts": {**request.facts, "link": link}})

    def _render(self, request: EmailRequest, recipient: Recipient, key: str) -> RenderedEmail:
        organizer = Recipient(name=self._mailer.from_name, email=self._mailer.from_email)
        # Stable for every recipient of one invitation (messages queued before session_uid was a fact).
        seed = f"{request.engagement_id}\x1f{request.step}\x1f{request.occurrence}"
        default_uid = hashlib.sha256(seed.encode()).hexdigest()[:32] + "@engagements"
        return render(
            request.kind,
            request.facts,
            recipient,
            organizer=organizer,
            stamped_at=self._clock(),
            default_session_uid=default_uid,
        )

    async def _alert_rejected(
        self, request: EmailRequest, recipient: Recipient, key: str, detail: str, status: int | None = None
    ) -> None:
        await self._alerts.raise_alert(
            engagement_id=request.engagement_id,
            alert_key=f"email-rejected:{key}",
            at=self._clock(),
            kind="email_rejected",
            message=f"SendGrid refused the {request.kind.value} email to {recipient.email}: {detail}",
            details={"message_key": key, "kind": request.kind.value, "status": status, "error": detail},
        )

    def all(self) -> list[Any]:
        return [self.send_email]


LINK_WITHHELD = "(personal link withheld from the record)"


def _for_the_record(request: EmailRequest, rendered: RenderedEmail) -> tuple[str, str]:
    """The bodies the outbox keeps: what was sent, but a signed link (a credential until it expires)
    is only in the email itself."""
    link = request.facts.get("link") if request.kind is EmailKind.ACCESS_CERTIFICATION else None
    if not isinstance(link, str) or not link.startswith("http"):
        return rendered.text, rendered.html
    text = rendered.text.replace(link, LINK_WITHHELD)
    html = rendered.html.replace(escape(link), escape(LINK_WITHHELD)).replace(link, escape(LINK_WITHHELD))
    return text, html
