"""Side effects waiting their turn. Decisions queue them; the workflow's main loop performs them.
Queued effects are part of the state, so continue-as-new carries them over and nothing is lost."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from domain.email_kinds import EmailKind, Recipient
from domain.vocabulary import Model, Phase


class QueuedEffect(Model):
    id: int = 0
    """Unique within the engagement (0 for effects queued before ids existed)."""


class ActedEffect(QueuedEffect):
    """An effect that records something someone did, and when."""

    at: datetime
    actor: str


class EmailEffect(QueuedEffect):
    type: Literal["email"] = "email"
    kind: EmailKind
    step: str
    occurrence: int
    recipients: list[Recipient]
    facts: dict[str, Any]


class AuditEffect(ActedEffect):
    type: Literal["audit"] = "audit"
    action: str
    details: dict[str, Any] = Field(default_factory=dict)


class PhaseEffect(ActedEffect):
    type: Literal["phase"] = "phase"
    phase: Phase
    reason: str


class EngineerEffect(ActedEffect):
    type: Literal["engineer"] = "engineer"
    email: str
    action: str


class RecordEffect(ActedEffect):
    type: Literal["record"] = "record"
    what: Literal["document", "session", "question"]
    key: str


class LedgerEffect(ActedEffect):
    """What the IAM confirmed, to be written to the access ledger and the audit log afterwards:
    the record follows the change, it never gates it."""

    type: Literal["ledger"] = "ledger"
    email: str
    reason: str
    granted: list[str]
    """Every group this engagement grants the identity (the ledger's open grants)."""
    granted_now: list[str] = Field(default_factory=list)
    """Memberships this change added."""
    revoked: list[str]
    """Every group of the policy's scope the identity must not hold (the ledger closes their grants)."""
    removed: list[str]
    """Memberships this change removed."""
    identity_active: bool
    changed: bool
    """Whether anything changed in the IAM (an audit entry is written only then)."""
    evidence: dict[str, Any]


class AlertEffect(QueuedEffect):
    """An admin alert to record; alerts have their own lane, so a parked effect can always raise one."""

    type: Literal["alert"] = "alert"
    at: datetime
    kind: str
    message: str
    """Names the engagement's step and the error, without personal data."""
    details: dict[str, Any] = Field(default_factory=dict)


class EngagementRecordEffect(QueuedEffect):
    """The engagement itself, recorded at contract signature."""

    type: Literal["engagement"] = "engagement"
    at: datetime


Effect = Annotated[
    EmailEffect | AuditEffect | PhaseEffect | EngineerEffect | RecordEffect | LedgerEffect | EngagementRecordEffect,
    Field(discriminator="type"),
]


class ParkedEffect(Model):
    """An effect that kept failing past the engagement's bound: set aside so the effects behind it go
    on, retried later, and retried or dropped by an operator."""

    effect: Effect
    parked_at: datetime
    last_error: str
    times_parked: int = 1
    retry_at: datetime
    """When it goes back to the end of the queue by itself."""


def describe(effect: Effect) -> str:
    """The effect in an admin's words, without personal data (kinds, steps and keys only)."""
    match effect:
        case EmailEffect(kind=kind, occurrence=occurrence):
            return f"email {kind.value} (occurrence {occurrence})"
        case AuditEffect(action=action):
            return f"audit entry {action}"
        case PhaseEffect(phase=phase):
            return f"phase record {phase.value}"
        case EngineerEffect(action=action):
            return f"engineer record {action}"
        case RecordEffect(what=what, key=key):
            return f"{what} record {key}"
        case LedgerEffect(reason=reason):
            return f"access ledger entry ({reason})"
        case EngagementRecordEffect():
            return "engagement record"
