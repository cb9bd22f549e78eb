"""The engagement's vocabulary: its phases, check states and knowledge-transfer documents."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


def person_ref(email: str) -> str:
    """How a log line names an engineer: a stable pseudonym, never the email (logs are read widely)."""
    return "person:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:10]


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


DOCUMENT_LABELS: dict[KnowledgeTransferDocument, str] = {
    KnowledgeTransferDocument.ARCHITECTURE_DOCUMENTATION: "architecture documentation",
    KnowledgeTransferDocument.SYSTEM_RUNBOOKS: "system runbooks",
    KnowledgeTransferDocument.INFRASTRUCTURE_DOCUMENTATION: "infrastructure documentation",
    KnowledgeTransferDocument.VENDOR_CONTRACT_INVENTORY: "vendor contract inventory",
    KnowledgeTransferDocument.DECISION_LOGS: "decision logs",
}
"""How a person reads each document's name."""


class Model(BaseModel):
    """Every model that crosses the Temporal boundary refuses unknown fields: add fields with defaults,
    never rename or remove one (old continue-as-new inputs and histories must still load)."""

    model_config = ConfigDict(extra="forbid")


class Milestones(BaseModel):
    """The engagement's dated milestones, as its database row keeps them: None until reached."""

    nda_signed_at: datetime | None = None
    notice_given_at: datetime | None = None
    end_date: datetime | None = None
    closed_at: datetime | None = None

    def reached(self) -> dict[str, datetime]:
        """The milestones reached so far, by column name."""
        return {name: at for name in MILESTONE_COLUMNS if (at := getattr(self, name)) is not None}


MILESTONE_COLUMNS = tuple(Milestones.model_fields)


def describe_duration(value: timedelta) -> str:
    """A duration as a person reads it, at any scale: ``60 days``, ``2 minutes``, ``1 hour 30 minutes``."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "no time"
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
        if len(parts) == 2:
            break
    return " ".join(parts)
