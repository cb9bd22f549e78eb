"""The evidence pack an auditor reads, as a pure function of the engagement's records.

For each grant: the basis (the role policy that names the group, the background check for a
production group), who asked and when, and when the IAM's read-back confirmed it. For each
revocation: what triggered it and when, when the IAM confirmed it, and the time to revoke against
the SLA. Access reviews, emails with their delivery state, alerts, and the audit log with the
verdict on its hash chain.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.vocabulary import Milestones


class Record(BaseModel):
    """Read from the database: columns the pack does not report are ignored."""

    model_config = ConfigDict(extra="ignore")


class EngineerRow(Record):
    email: str
    name: str
    role: str
    production_access: bool
    check_status: str
    removed_at: datetime | None = None


class GrantRow(Record):
    engineer_email: str
    group_name: str
    granted_at: datetime
    granted_by: str
    grant_evidence: dict[str, Any]
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_evidence: dict[str, Any] | None = None


class AuditRow(Record):
    entry_id: int
    at: datetime
    actor: str
    action: str
    details: dict[str, Any]
    prev_hash: str
    row_hash: str


class EmailRow(Record):
    kind: str
    recipient: str
    subject: str
    state: str
    sent_at: datetime | None = None
    last_event: str | None = None
    last_event_at: datetime | None = None
    events: list[str] = []


class AlertRow(Record):
    alert_id: int
    raised_at: datetime
    kind: str
    severity: str
    message: str
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledgement: str | None = None


class ChainVerdict(Record):
    entries: int
    intact: bool
    head: str
    broken_at: int | None = None
    reason: str | None = None


class EngagementRecords(Record, Milestones):
    engagement_id: str
    contract_id: str
    client_name: str
    engagement_type: str
    phase: str
    spec: dict[str, Any]
    engineers: list[EngineerRow]
    grants: list[GrantRow]
    audit: list[AuditRow]
    emails: list[EmailRow]
    alerts: list[AlertRow]
    chain: ChainVerdict


class TimelineEntry(Record):
    at: datetime
    actor: str
    what: str


class GrantEvidence(Record):
    engineer: str
    email: str
    group: str
    basis: str
    check: str
    requested_by: str
    requested_at: datetime
    confirmed_at: str | None
    """When the IAM's read-back confirmed it (as the worker's clock recorded it)."""


class RevocationEvidence(Record):
    engineer: str
    email: str
    group: str
    trigger: str
    triggered_at: datetime
    confirmed_at: datetime | None
    seconds_to_revoke: float | None
    within_sla: bool | None
    """None when the IAM's confirmation time was not recorded."""


class ReviewEvidence(Record):
    at: datetime
    engineers: int
    corrections: list[str]


class CertificationEvidence(Record):
    """One answer of an access certification round: the IAM owner's, or the spec's rule at the due date."""

    round: int
    engineer: str
    """The engineer's email."""
    decision: str
    decided_by: str
    """Who answered (through the signed link: the IAM owner), or ``default applied``."""
    decided_at: datetime
    default_applied: bool


class EvidencePack(Record):
    engagement_id: str
    contract_id: str
    client: str
    engagement_type: str
    phase: str
    milestones: dict[str, datetime | None]
    revocation_sla_seconds: float
    timeline: list[TimelineEntry]
    grants: list[GrantEvidence]
    revocations: list[RevocationEvidence]
    reviews: list[ReviewEvidence]
    certifications: list[CertificationEvidence] = []
    emails: list[EmailRow]
    alerts: list[AlertRow]
    audit: list[AuditRow]
    chain: ChainVerdict


def _label(action: str) -> str:
    if action.startswith("phase:"):
        return "engagement entered " + action.partition(":")[2].replace("_", " ")
    return action.replace("_", " ")


def _when(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else None
    return None


def _summary(entry: AuditRow) -> str:
    d = entry.details
    parts = [_label(entry.action)]
    for key in ("engineer", "role", "outcome", "phase", "reason", "signed_by", "document", "session", "kind"):
        value = d.get(key)
        if isinstance(value, str) and value:
            parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def _role_at(records: EngagementRecords, email: str, moment: datetime) -> str | None:
    role = None
    for spec_engineer in records.spec.get("engineers", []):
        if str(spec_engineer.get("email", "")).lower() == email:
            role = spec_engineer.get("role")
    for entry in records.audit:
        if entry.at > moment:
            break
        if entry.action in ("engineer_added", "role_changed") and entry.details.get("engineer") == email:
            role = entry.details.get("role", role)
    return str(role) if role else None


def _basis(records: EngagementRecords, grant: GrantRow) -> str:
    role = _role_at(records, grant.engineer_email, grant.granted_at)
    policy = records.spec.get("roles", {}).get(role or "", {})
    if grant.group_name in policy.get("production", []):
        return f"role policy of {role}: production group, granted only after a cleared background check"
    if grant.group_name in policy.get("non_production", []):
        return f"role policy of {role}: non-production group"
    return f"NOT in the policy of role {role or 'unknown'}"


CERTIFYING = ("certification_decided", "certification_default_applied")
"""Audit actions of an access certification; with ``decision: revoke`` they are why access ended."""


def _trigger(records: EngagementRecords, grant: GrantRow) -> str:
    """What the audit log says led to the revocation, at or just before it was asked for."""
    assert grant.revoked_at is not None
    email, reason = grant.engineer_email, "policy change"
    for entry in records.audit:
        if entry.at > grant.revoked_at:
            break
        engineers = entry.details.get("engineers")
        if entry.details.get("engineer") == email or (isinstance(engineers, list) and email in engineers):
            if entry.action in ("engineer_removed", "emergency_revocation", "role_changed", "check_completed"):
                reason = _summary(entry)
            if entry.action in CERTIFYING and entry.details.get("decision") == "revoke":
                reason = f"{_summary(entry)}; round {entry.details.get('round')}: revoke"
        if entry.action in ("phase:transition", "phase:cancelled", "phase:closed"):
            reason = _summary(entry)
    return f"{reason} (revoked by {grant.revoked_by or 'the workflow'})"


def build_pack(records: EngagementRecords, revocation_sla: timedelta) -> EvidencePack:
    engineers = {e.email: e for e in records.engineers}
    grants, revocations = [], []
    for g in records.grants:
        engineer = engineers.get(g.engineer_email)
        name = engineer.name if engineer else g.engineer_email
        grants.append(
            GrantEvidence(
                engineer=name,
                email=g.engineer_email,
                group=g.group_name,
                basis=_basis(records, g),
                check=(engineer.check_status if engineer else "unknown").replace("_", " "),
                requested_by=g.granted_by,
                requested_at=g.granted_at,
                confirmed_at=str(g.grant_evidence.get("read_back_at") or "") or None,
            )
        )
        if g.revoked_at is None:
            continue
        confirmed = _when((g.revoke_evidence or {}).get("read_back_at"))
        seconds = (confirmed - g.revoked_at).total_seconds() if confirmed else None
        revocations.append(
            RevocationEvidence(
                engineer=name,
                email=g.engineer_email,
                group=g.group_name,
                trigger=_trigger(records, g),
                triggered_at=g.revoked_at,
                confirmed_at=confirmed,
                seconds_to_revoke=seconds,
                within_sla=None if seconds is None else seconds <= revocation_sla.total_seconds(),
            )
        )
    reviews = [
        ReviewEvidence(
            at=e.at,
            engineers=int(e.details.get("engineers", 0) or 0),
            corrections=[str(c) for c in e.details.get("changes", [])],
        )
        for e in records.audit
        if e.action == "access_review"
    ]
    return EvidencePack(
        engagement_id=records.engagement_id,
        contract_id=records.contract_id,
        client=records.client_name,
        engagement_type=records.engagement_type.replace("_", " "),
        phase=records.phase,
        milestones={
            "NDA signed": records.nda_signed_at,
            "notice given": records.notice_given_at,
            "end date": records.end_date,
            "closed": records.closed_at,
        },
        revocation_sla_seconds=revocation_sla.total_seconds(),
        timeline=[TimelineEntry(at=e.at, actor=e.actor, what=_summary(e)) for e in records.audit],
        grants=grants,
        revocations=revocations,
        reviews=reviews,
        certifications=certifications(records.audit),
        emails=records.emails,
        alerts=records.alerts,
        audit=records.audit,
        chain=records.chain,
    )


def certifications(audit: list[AuditRow]) -> list[CertificationEvidence]:
    """Every certification answer from the audit log, in order; the rule's decisions as ``default applied``."""
    rows = []
    for entry in audit:
        if entry.action == "certification_decided":
            rows.append(
                CertificationEvidence(
                    round=int(entry.details.get("round", 0) or 0),
                    engineer=str(entry.details.get("engineer", "")),
                    decision=str(entry.details.get("decision", "")),
                    decided_by=entry.actor,
                    decided_at=entry.at,
                    default_applied=False,
                )
            )
        elif entry.action == "certification_default_applied":
            rows += [
                CertificationEvidence(
                    round=int(entry.details.get("round", 0) or 0),
                    engineer=str(engineer),
                    decision=str(entry.details.get("decision", "")),
                    decided_by="default applied",
                    decided_at=entry.at,
                    default_applied=True,
                )
                for engineer in entry.details.get("engineers", [])
            ]
    return rows


def revoked_since(pack: EvidencePack, since: date) -> list[RevocationEvidence]:
    """The revocations asked for on or after ``since`` (a leaver report across engagements)."""
    return [r for r in pack.revocations if r.triggered_at.date() >= since]
