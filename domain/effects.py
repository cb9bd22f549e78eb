"""Side effects waiting their turn. Decisions queue them; the workflow's main loop performs them.
Queued effects are part of the state, so continue-as-new carries them over and nothing is lost."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from domain.email_kinds import EmailKind, Recipient
from domain.vocabulary import Model, Phase


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
