"""What the engagement workflow carries: its state (which continue-as-new hands on), its input and
result, and the facts reported to it by signal.

These models cross the Temporal boundary through the pydantic data converter, so they must stay
backward compatible: add fields with defaults, never rename or remove one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field

from domain.effects import AlertEffect, Effect, ParkedEffect
from domain.spec import EngagementSpec, EngineerSpec
from domain.vocabulary import CheckStatus, KnowledgeTransferDocument, Model, Phase


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
    """Access revoked by an emergency command or an access certification, until it is restored."""
    suspended_for: Literal["emergency", "access certification"] | None = None
    """Why it is suspended (None while suspended: an emergency, recorded before the field was)."""
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
    check_result_sent: bool = False
    """A result was sent to the running check; its outcome has not been reported back yet."""

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
    location: str | None = None
    """Where the session takes place (a room, an address), when the scheduler said."""
    join_url: str | None = None
    """The link to join online, when the scheduler gave one."""


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


class AccessRestoration(Model):
    actor: str
    """Who lifted the emergency revocation."""
    reason: str
    """Why access had been revoked (the emergency's reason), for the client's notice."""
    requested_at: datetime
    emails: list[str]
    """The engineers whose access is being restored."""


class RevocationEvidence(Model):
    revoked_at: datetime
    engineers: list[EngineerAccessReadBack]


class DeliveryProblem(Model):
    """SendGrid reported that a message will not arrive (bounce, dropped): signalled to the engagement."""

    message_key: str
    kind: str
    """The email kind (EmailKind value)."""
    recipient: str
    event: Literal["bounce", "dropped", "blocked"]
    reason: str | None = None
    at: datetime


class CertificationEntry(Model):
    """One engineer of a certification round, as listed to the client's IAM owner, and the answer."""

    email: str
    name: str
    role: str
    groups: list[str]
    """The groups the IAM read back when the round opened."""
    decision: Literal["keep", "revoke"] | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    default_applied: bool = False
    """Nobody answered by the due date: the spec's ``certification_default`` decided."""


class Certification(Model):
    """An open round of access certification (README "Access certification")."""

    round: int
    opened_at: datetime
    due_at: datetime
    engineers: list[CertificationEntry]

    def entry(self, email: str) -> CertificationEntry | None:
        return next((e for e in self.engineers if e.email.lower() == email.lower()), None)

    def undecided(self) -> list[CertificationEntry]:
        return [e for e in self.engineers if e.decision is None]


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
    last_emergency_reason: str | None = None
    """Why access was last revoked in an emergency (told to the client when it is restored)."""
    restoration: AccessRestoration | None = None
    """Access restored after an emergency, waiting for the IAM's confirmation, to be reported."""
    delivery_problems: list[DeliveryProblem] = Field(default_factory=list)
    """Emails that will not arrive (bounced, dropped), as SendGrid reported them."""
    transition_closing_sent: bool = False
    access_review_requested: bool = False
    access_reviews_done: int = 0
    last_access_review_at: datetime | None = None
    handover_reminder_sent_for: datetime | None = None
    """The end date the last handover reminder was sent for (a moved end date earns a new one)."""
    revocation: RevocationEvidence | None = None
    certification: Certification | None = None
    """The access certification round waiting for the IAM owner's answers (one at a time)."""
    certification_rounds: int = 0
    """How many certification rounds were opened: the next one's number."""
    email_occurrences: dict[str, int] = Field(default_factory=dict)
    effects: list[Effect] = Field(default_factory=list)
    """Side effects decided but not yet performed."""
    parked: list[ParkedEffect] = Field(default_factory=list)
    """Effects that kept failing past the bound, set aside (see ``ParkedEffect``)."""
    alerts: list[AlertEffect] = Field(default_factory=list)
    """Admin alerts to record, in their own lane."""
    effects_queued: int = 0
    """How many effects were ever queued: the next one's id."""
    checks_to_cancel: list[str] = Field(default_factory=list)
    """Running check workflows to cancel (their engineer left)."""
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
