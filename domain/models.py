"""The engagement's state, the commands people send it and what it answers.

These models cross the Temporal boundary (workflow input, updates, queries, activity payloads)
through the pydantic data converter, so they must stay backward compatible: add fields with
defaults, never rename one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from domain.emails import EmailKind, Recipient
from domain.spec import EngagementSpec, EngineerSpec


class Phase(StrEnum):
    AWAITING_NDA = "awaiting_nda"
    ONBOARDING = "onboarding"
    DELIVERY = "delivery"
    NOTICE = "notice"
    TRANSITION = "transition"
    CLOSED = "closed"
    CANCELLED = "cancelled"


ACCESS_PHASES = frozenset({Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE})
"""The only phases in which any engineer may hold a grant in the client's IAM."""


class CheckStatus(StrEnum):
    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    """Required; the check workflow has not started yet (it starts once the NDA is signed)."""
    IN_PROGRESS = "in_progress"
    CLEARED = "cleared"
    FAILED = "failed"
    CANCELLED = "cancelled"


class KnowledgeTransferDocument(StrEnum):
    ARCHITECTURE_DOCUMENTATION = "architecture_documentation"
    SYSTEM_RUNBOOKS = "system_runbooks"
    INFRASTRUCTURE_DOCUMENTATION = "infrastructure_documentation"
    VENDOR_CONTRACT_INVENTORY = "vendor_contract_inventory"
    DECISION_LOGS = "decision_logs"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- state carried by the workflow


class Announcement(Model):
    kind: Literal["added", "removed", "role_changed", "check_result"]
    role: str
    """The engineer's role when the change was made."""


class EngineerState(Model):
    spec: EngineerSpec
    """Who the engineer is and their current role."""
    check: CheckStatus
    """Where their background check stands."""
    check_workflow_id: str | None = None
    """The child workflow running their check, once started."""
    checks_performed: list[str] = Field(default_factory=list)
    """The checks the jurisdiction allowed and that were run."""
    removed: bool = False
    """Removed from the engagement: no grant may remain."""
    suspended: bool = False
    """Access revoked by an emergency command, until it is restored."""
    scim_user_id: str | None = None
    """The identity's id in the client's IAM, once created or adopted."""
    identity_active: bool = False
    """Whether the IAM last read the identity back as active."""
    groups: list[str] = Field(default_factory=list)
    """The groups the IAM last read back for this identity (within the policy's groups)."""
    announcements: list[Announcement] = Field(default_factory=list)
    """Changes to tell the client about once the IAM confirms them, in order."""
    reconcile_requested: bool = False
    """Apply the plan even if the last read-back matches it (a review, a failed step)."""
    requested_by: str | None = None
    """Who asked for the change still to be applied (the ledger's actor); the workflow when unset."""

    @property
    def email(self) -> str:
        return str(self.spec.email)


class DocumentRecord(Model):
    name: KnowledgeTransferDocument
    location: str
    """Where the client can find it (URL, repository path)."""
    delivered_at: datetime
    delivered_by: str


class HandoverSession(Model):
    session_id: str
    title: str
    starts_at: datetime
    duration: timedelta
    status: Literal["scheduled", "held", "cancelled"] = "scheduled"
    sequence: int = 0
    """Bumped on every reschedule or cancellation (the calendar invite's SEQUENCE)."""
    held_at: datetime | None = None
    notes: str | None = None


class Question(Model):
    question_id: str
    text: str
    asked_by: str
    asked_at: datetime
    answer: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None


class Notice(Model):
    given_by: Literal["client", "firm"]
    given_at: datetime
    actor: str
    reason: str | None = None


class EmergencyRevocation(Model):
    actor: str
    reason: str
    requested_at: datetime
    emails: list[str]
    """The engineers whose access is being revoked."""


class RevocationEvidence(Model):
    revoked_at: datetime
    engineers: list[EngineerAccessReadBack]


class EngineerAccessReadBack(Model):
    email: str
    scim_user_id: str | None
    identity_active: bool
    identity_exists: bool = True
    groups: list[str]
    """What the IAM holds now, within the policy's groups."""
    granted_groups: list[str] = Field(default_factory=list)
    """Added by this step (missing before it)."""
    removed_groups: list[str] = Field(default_factory=list)
    """Removed by this step (held before it)."""
    membership_verified: bool = True
    """False when the IAM could not show group membership: ``groups`` is then what the IAM accepted,
    never proven; an admin must check by hand (``unverified_reason`` says why)."""
    unverified_reason: str | None = None
    held_for_other_engagements: list[str] = Field(default_factory=list)
    """Groups in this engagement's scope the IAM keeps because another live engagement grants them."""
    active_for_other_engagements: bool = False
    """The identity stays active because another live engagement needs it."""
    shared_lookup_failed: bool = False
    """The database could not say what other engagements grant: this engagement's access was taken away
    fully anyway; re-check later (another engagement's grants may need restoring)."""


# ---------------------------------------------------------------- side effects waiting their turn
# Handlers decide and queue; the workflow's main loop performs them in order. Queued effects are
# part of the state, so continue-as-new carries them over and nothing is lost.


class EmailEffect(Model):
    type: Literal["email"] = "email"
    kind: EmailKind
    step: str
    occurrence: int
    recipients: list[Recipient]
    facts: dict[str, Any]


class AuditEffect(Model):
    type: Literal["audit"] = "audit"
    at: datetime
    actor: str
    action: str
    details: dict[str, Any] = Field(default_factory=dict)


class PhaseEffect(Model):
    type: Literal["phase"] = "phase"
    phase: Phase
    at: datetime
    actor: str
    reason: str


class EngineerEffect(Model):
    type: Literal["engineer"] = "engineer"
    email: str
    at: datetime
    actor: str
    action: str


class RecordEffect(Model):
    type: Literal["record"] = "record"
    what: Literal["document", "session", "question"]
    key: str
    at: datetime
    actor: str


Effect = Annotated[EmailEffect | AuditEffect | PhaseEffect | EngineerEffect | RecordEffect, Field(discriminator="type")]


RevocationEvidence.model_rebuild()


class EngagementState(Model):
    phase: Phase = Phase.AWAITING_NDA
    contract_signed_at: datetime
    nda_signed_at: datetime | None = None
    nda_signed_by: str | None = None
    engineers: list[EngineerState]
    notice: Notice | None = None
    end_date: datetime | None = None
    transition_ends_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled_reason: str | None = None
    documents: list[DocumentRecord] = Field(default_factory=list)
    sessions: list[HandoverSession] = Field(default_factory=list)
    questions: list[Question] = Field(default_factory=list)
    next_access_review_at: datetime | None = None
    access_suspended: bool = False
    """Every engineer's access revoked by an emergency command, until it is restored."""
    emergency: EmergencyRevocation | None = None
    """An emergency revocation waiting for the IAM's confirmation, to be reported."""
    delivery_problems: list[DeliveryProblem] = Field(default_factory=list)
    """Emails that will not arrive (bounced, dropped), as SendGrid reported them."""
    transition_closing_sent: bool = False
    access_review_requested: bool = False
    access_reviews_done: int = 0
    last_access_review_at: datetime | None = None
    handover_reminder_sent_for: datetime | None = None
    """The end date the last handover reminder was sent for (a moved end date earns a new one)."""
    revocation: RevocationEvidence | None = None
    email_occurrences: dict[str, int] = Field(default_factory=dict)
    effects: list[Effect] = Field(default_factory=list)
    """Side effects decided but not yet performed."""
    check_workflows_started: int = 0
    runs: int = 1
    """How many workflow runs (continue-as-new) this engagement has used."""

    def engineer(self, email: str) -> EngineerState | None:
        return next((e for e in self.engineers if e.email.lower() == email.lower()), None)

    def current_engineers(self) -> list[EngineerState]:
        return [e for e in self.engineers if not e.removed]


class EngagementInput(Model):
    spec: EngagementSpec
    """The validated spec."""
    state: EngagementState | None = None
    """Carried over by continue-as-new; absent on the first run."""
    continue_as_new_after_events: int | None = None
    """Continue as new past this many history events as well as when Temporal suggests it (tests)."""


class EngagementSummary(Model):
    contract_id: str
    phase: Phase
    closed_at: datetime | None
    engineers: int
    documents_delivered: int
    sessions_held: int
    questions_answered: int
    remaining_grants: int
    active_identities: int
    runs: int


# ---------------------------------------------------------------- commands (updates)


class Command(Model):
    actor: str = Field(min_length=1)
    """Who sends the command: recorded in the audit log."""


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


class CancelSession(Command):
    session_id: str
    reason: str | None = None


class Ack(Model):
    accepted: str
    """What the engagement accepted, in words."""
    phase: Phase


# ---------------------------------------------------------------- the status query


class Deadline(Model):
    label: str
    at: datetime


class EngineerView(Model):
    name: str
    email: str
    role: str
    production_access: bool
    check: CheckStatus
    removed: bool
    suspended: bool = False
    identity_active: bool
    groups: list[str]


class DocumentView(Model):
    name: KnowledgeTransferDocument
    delivered_at: datetime | None
    location: str | None


class Timeline(Model):
    contract_signed_at: datetime
    nda_signed_at: datetime | None
    notice_given_at: datetime | None
    end_date: datetime | None
    transition_ends_at: datetime | None
    closed_at: datetime | None


class DeliveryProblem(Model):
    """SendGrid reported that a message will not arrive (bounce, dropped): signalled to the engagement."""

    message_key: str
    kind: str
    """The email kind (EmailKind value)."""
    recipient: str
    event: Literal["bounce", "dropped", "blocked"]
    reason: str | None = None
    at: datetime


class CheckCompleted(Model):
    email: str
    outcome: Literal["cleared", "failed", "cancelled"]
    checks: list[str]
    notes: str | None = None
    check_workflow_id: str


class BackgroundCheckInput(Model):
    engagement_workflow_id: str
    engagement_id: str
    client: str
    engineer: EngineerSpec
    checks: list[str]
    reminder_interval: timedelta


class StatusView(Model):
    contract_id: str
    client: str
    engagement_type: str
    phase: Phase
    timeline: Timeline
    engineers: list[EngineerView]
    documents: list[DocumentView]
    sessions: list[HandoverSession]
    questions: list[Question]
    next_deadline: Deadline | None
    cancelled_reason: str | None
    revocation: RevocationEvidence | None
    last_access_review_at: datetime | None = None
    access_suspended: bool = False
    delivery_problems: list[DeliveryProblem] = Field(default_factory=list)
    pending_effects: int
    """Side effects decided and not yet performed."""
    settled: bool = False
    """No effect pending and every identity in the IAM matches the plan."""
    runs: int


EngagementState.model_rebuild()
