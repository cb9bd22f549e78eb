"""What the engagement's activities take and give back: they cross the Temporal boundary, so they
stay backward compatible (add fields with defaults, never rename one)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from domain.effects import LedgerEffect
from domain.spec import EngagementSpec, IamEndpoint
from domain.state import DocumentRecord, EngineerAccessReadBack, EngineerState, HandoverSession, Question
from domain.vocabulary import Milestones, Phase


class EffectInput(BaseModel):
    """The input of an activity that performs one of the engagement's queued effects."""

    engagement_id: str
    effect_id: int = 0
    """The queued effect this performs (0: none, or queued before ids): what it writes (an audit entry,
    an alert) is keyed by it across runs."""


class RecordEngagementInput(EffectInput):
    spec: EngagementSpec
    at: datetime


class PhaseChange(EffectInput, Milestones):
    phase: Phase
    at: datetime
    actor: str
    reason: str


class AuditInput(EffectInput):
    at: datetime
    actor: str
    action: str
    details: dict[str, Any] = Field(default_factory=dict)


class AlertInput(EffectInput):
    at: datetime
    kind: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class EngineerRecord(EffectInput):
    engineer: EngineerState
    at: datetime
    actor: str
    action: str


class AccessRequest(BaseModel):
    engagement_id: str
    iam: IamEndpoint
    email: str
    display_name: str
    active: bool
    """Whether the identity should be active."""
    groups: list[str]
    """Exactly the groups the identity should belong to, within ``scope``."""
    scope: list[str]
    """Every group the engagement's policy manages: memberships outside the plan are removed."""
    expected_groups: list[str] | None = None
    """The groups the last read-back showed (within scope): the "before", so that a convergence that
    changes nothing costs a few SCIM requests whatever the group sizes. None: read it from the IAM."""
    expected_active: bool | None = None
    """Whether the last read-back showed the identity active (None: unknown)."""
    actor: str
    reason: str
    at: datetime


class AccessOutcome(BaseModel):
    readback: EngineerAccessReadBack
    granted: list[str]
    """Every group this engagement grants the identity (the ledger's open grants)."""
    revoked: list[str]
    """Every group of the scope outside the plan: the ledger closes any grant of them."""
    changed: bool
    evidence: dict[str, Any]
    """Each SCIM operation with its outcome, and what the IAM read back (for the ledger)."""
    problem: str | None = None
    """Why membership could not be proven or shared grants not read, when that happened."""


def ledger_entry(request: AccessRequest, outcome: AccessOutcome) -> LedgerEffect:
    """What the ledger and audit log keep of one confirmed convergence."""
    readback = outcome.readback
    return LedgerEffect(
        email=request.email,
        actor=request.actor,
        reason=request.reason,
        at=request.at,
        granted=outcome.granted,
        granted_now=readback.granted_groups,
        revoked=outcome.revoked,
        removed=readback.removed_groups,
        identity_active=readback.identity_active,
        changed=outcome.changed,
        evidence=outcome.evidence,
    )


class LedgerRecord(BaseModel):
    engagement_id: str
    entry: LedgerEffect


class DocumentInput(EffectInput):
    record: DocumentRecord


class SessionInput(EffectInput):
    session: HandoverSession
    actor: str
    at: datetime


class QuestionInput(EffectInput):
    question: Question
    actor: str
    at: datetime


RECORD_INPUTS: dict[str, type[BaseModel]] = {
    cls.__name__: cls
    for cls in (
        RecordEngagementInput,
        PhaseChange,
        AuditInput,
        EngineerRecord,
        LedgerRecord,
        DocumentInput,
        SessionInput,
        QuestionInput,
    )
}
"""What a batch of records may hold: the input of each storage activity, named by its model."""


class RecordStep(BaseModel):
    """One queued record in a batch: the input its own activity would take."""

    input_type: str
    input: dict[str, Any]

    @field_validator("input_type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RECORD_INPUTS:
            raise ValueError(f"not a record a batch may hold: {value!r}")
        return value

    @classmethod
    def of(cls, record: BaseModel) -> RecordStep:
        return cls(input_type=type(record).__name__, input=record.model_dump(mode="json"))

    def parsed(self) -> BaseModel:
        return RECORD_INPUTS[self.input_type].model_validate(self.input)


class RecordBatch(BaseModel):
    """``batched-records`` runs: consecutive queued records, written in one activity, in order."""

    records: list[RecordStep] = Field(min_length=1)


class RecordsWritten(BaseModel):
    written: int
    """How many records of the batch were written, from the first: the rest is queued on."""


ALERT_TIMEOUT_SECONDS = 2.0
