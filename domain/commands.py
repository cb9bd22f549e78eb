"""The commands people send an engagement (each one a Temporal Update) and what it answers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import EmailStr, Field

from domain.bounds import Reference, WebUrl
from domain.spec import EngineerSpec
from domain.vocabulary import KnowledgeTransferDocument, Model, Phase

ActorSource = Literal["os_user", "declared", "tls_client_cert", "api_key"]


class Command(Model):
    actor: str = Field(min_length=1)
    """Who sends the command: recorded in the audit log."""
    actor_source: ActorSource = "os_user"
    """How the actor is known: the identity the Temporal connection authenticated (a TLS client
    certificate, an API key), a name given with ``--actor``, or the operating system's user."""


class RecordNdaSigned(Command):
    signed_by: str = Field(min_length=1)


class AddEngineer(Command):
    engineer: EngineerSpec


class RemoveEngineer(Command):
    email: EmailStr


class ChangeRole(Command):
    email: EmailStr
    role: str = Field(min_length=1)
    production_access: bool | None = None
    """Whether the engineer needs production access in the new role; unchanged when omitted."""


class RecordCheckResult(Command):
    email: EmailStr
    outcome: Literal["cleared", "failed"]
    notes: str | None = None


class GiveNotice(Command):
    given_by: Literal["client", "firm"]
    reason: str | None = None


class MoveEndDate(Command):
    end_date: datetime
    reason: str | None = None


class RecordDocument(Command):
    document: KnowledgeTransferDocument
    location: str = Field(min_length=1)


class ScheduleSession(Command):
    session_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")
    title: str = Field(min_length=1)
    starts_at: datetime
    duration: timedelta = timedelta(hours=1)
    location: Reference | None = None
    """A room or an address, shown in the invitation."""
    join_url: WebUrl | None = None
    """The link to join online, shown in the invitation and its calendar entry."""


class RecordSessionHeld(Command):
    session_id: str
    notes: str | None = None


class AskQuestion(Command):
    question_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")
    text: str = Field(min_length=1)


class AnswerQuestion(Command):
    question_id: str
    answer: str = Field(min_length=1)


class CancelEngagement(Command):
    reason: str = Field(min_length=1)


class RequestAccessReview(Command):
    pass


class RevokeAccessNow(Command):
    email: EmailStr | None = None
    """One engineer; every engineer when omitted."""
    reason: str = Field(min_length=1)


class RestoreAccess(Command):
    email: EmailStr | None = None
    """One engineer; the whole engagement when omitted."""


class RescheduleSession(Command):
    session_id: str
    starts_at: datetime
    duration: timedelta | None = None
    location: Reference | None = None
    """A new room or address; unchanged when omitted."""
    join_url: WebUrl | None = None
    """A new join link; unchanged when omitted."""


class CancelSession(Command):
    session_id: str
    reason: str | None = None


class RetryParkedEffect(Command):
    effect_id: int | None = None
    """One parked effect; every parked effect when omitted."""
    reason: str = Field(min_length=1)


class DropParkedEffect(Command):
    effect_id: int
    reason: str = Field(min_length=1)


class Ack(Model):
    accepted: str
    """What the engagement accepted, in words."""
    phase: Phase
