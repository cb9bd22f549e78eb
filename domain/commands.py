"""The commands people send an engagement (each one a Temporal Update) and what it answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import EmailStr, Field

from domain.bounds import Id, Instant, LongText, PersonName, Reference, SessionLength, SingleLine, Text, Title, WebUrl
from domain.spec import EngineerSpec
from domain.vocabulary import KnowledgeTransferDocument, Model, Phase

Location = Annotated[str, Text(2000)]
ActorSource = Literal["os_user", "declared", "tls_client_cert", "api_key", "signed_link"]


class Command(Model):
    actor: SingleLine
    """Who sends the command: recorded in the audit log."""
    actor_source: ActorSource = "os_user"
    """How the actor is known: the identity the Temporal connection authenticated (a TLS client
    certificate, an API key), a name given with ``--actor``, the operating system's user, or the
    signed certification link the client's IAM owner followed (``certification.py``)."""


class RecordNdaSigned(Command):
    signed_by: PersonName


class AddEngineer(Command):
    engineer: EngineerSpec


class RemoveEngineer(Command):
    email: EmailStr


class ChangeRole(Command):
    email: EmailStr
    role: SingleLine
    production_access: bool | None = None
    """Whether the engineer needs production access in the new role; unchanged when omitted."""


class RecordCheckResult(Command):
    email: EmailStr
    outcome: Literal["cleared", "failed"]
    notes: LongText | None = None


class GiveNotice(Command):
    given_by: Literal["client", "firm"]
    reason: LongText | None = None


class MoveEndDate(Command):
    end_date: Instant
    reason: LongText | None = None


class RecordDocument(Command):
    document: KnowledgeTransferDocument
    location: Location
    """Where the client finds it: an http(s) link (checked by the decision, so that locations
    recorded before the rule still load)."""


class ScheduleSession(Command):
    session_id: Id
    title: Title
    starts_at: Instant
    duration: SessionLength = timedelta(hours=1)
    location: Reference | None = None
    """A room or an address, shown in the invitation."""
    join_url: WebUrl | None = None
    """The link to join online, shown in the invitation and its calendar entry."""


class RecordSessionHeld(Command):
    session_id: Id
    notes: LongText | None = None


class AskQuestion(Command):
    question_id: Id
    text: LongText


class AnswerQuestion(Command):
    question_id: Id
    answer: LongText


class CancelEngagement(Command):
    reason: LongText


class RequestAccessReview(Command):
    pass


class RevokeAccessNow(Command):
    email: EmailStr | None = None
    """One engineer; every engineer when omitted."""
    reason: LongText


class CertifyAccess(Command):
    """The client's IAM owner keeps or revokes one engineer's access in a certification round."""

    round: int = Field(ge=1, le=1_000_000)
    email: EmailStr
    decision: Literal["keep", "revoke"]


class RestoreAccess(Command):
    email: EmailStr | None = None
    """One engineer; the whole engagement when omitted."""


class RescheduleSession(Command):
    session_id: Id
    starts_at: Instant
    duration: SessionLength | None = None
    location: Reference | None = None
    join_url: WebUrl | None = None


class CancelSession(Command):
    session_id: Id
    reason: LongText | None = None


class RetryParkedEffect(Command):
    effect_id: int | None = Field(default=None, ge=1)
    """One parked effect; every parked effect when omitted."""
    reason: LongText


class DropParkedEffect(Command):
    effect_id: int = Field(ge=1)
    reason: LongText


class Ack(Model):
    accepted: str
    """What the engagement accepted, in words."""
    phase: Phase
