"""Background checks through a screening provider: what crosses Temporal, and the pure rules.

The provider is Checkr-shaped (candidate, hosted invitation, report, adjudication, adverse action);
``ProviderSnapshot`` is what the provider says about one check right now, without personal data,
read fresh from the provider (never taken from a webhook body). ``stage`` reads a snapshot; the
child workflow (``workflows/screening.py``) only orchestrates on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.bounds import LongText, Text
from domain.documents import DocumentError, read_document
from domain.email_kinds import EmailKind, Recipient, recipients
from domain.spec import EngagementSpec, EngineerSpec, Screening, describe_validation_error
from domain.vocabulary import Model

ProviderName = Literal["checkr", "manual"]
ProviderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
"""A provider's resource id (Checkr's are 24 hex digits): opaque, never personal data."""
CheckName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


def with_firm_provider(spec: EngagementSpec, provider: ProviderName) -> EngagementSpec:
    """The spec as started: its own ``screening`` wins; otherwise the firm-wide provider, unless manual
    (an engagement without ``screening`` runs today's manual check, unchanged)."""
    if spec.screening is not None or provider == "manual":
        return spec
    return spec.model_copy(update={"screening": Screening(provider=provider)})


# ---------------------------------------------------------------- which checks a jurisdiction permits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScreeningPackage(_Strict):
    package: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")]
    """The provider's package slug that bundles exactly the permitted screenings."""
    checks: list[CheckName] = Field(min_length=1, max_length=20)
    """What the package checks, as the engineer and the client are told (e.g. criminal_record)."""


class JurisdictionTable(_Strict):
    """Jurisdiction (ISO 3166-1 alpha-2) -> the package its law permits; ``default`` for the others."""

    default: ScreeningPackage
    jurisdictions: dict[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], ScreeningPackage] = Field(
        default_factory=dict, max_length=300
    )

    def package_for(self, jurisdiction: str) -> ScreeningPackage:
        return self.jurisdictions.get(jurisdiction.upper(), self.default)


DEFAULT_JURISDICTIONS_FILE = Path(__file__).resolve().parent.parent / "config" / "screening_jurisdictions.yaml"


class JurisdictionTableError(ValueError):
    """The jurisdiction table cannot be read or breaks a rule; the message names the field."""


def load_jurisdictions(path: Path = DEFAULT_JURISDICTIONS_FILE) -> JurisdictionTable:
    """Read the YAML or JSON table (within ``domain.documents``' limits) and validate it."""
    try:
        data = read_document(path)
    except DocumentError as error:
        raise JurisdictionTableError(f"{path}: {error}") from None
    try:
        return JurisdictionTable.model_validate(data)
    except ValidationError as error:
        raise JurisdictionTableError(f"{path}: {describe_validation_error(error)}") from None


# ---------------------------------------------------------------- what the provider says


InvitationStatus = Literal["pending", "completed", "expired"]
ReportStatus = Literal["pending", "suspended", "paused", "complete", "canceled", "dispute"]


class ProviderSnapshot(Model):
    """One check at the provider, as read from its API just now (ids and states only)."""

    candidate_id: ProviderId
    invitation_id: ProviderId | None = None
    invitation_status: InvitationStatus | None = None
    report_id: ProviderId | None = None
    report_status: ReportStatus | None = None
    result: Literal["clear", "consider"] | None = None
    """Set once the report is complete."""
    adverse_action_id: ProviderId | None = None
    adverse_action_status: Literal["pending", "complete", "dispute", "canceled"] | None = None


Stage = Literal["awaiting_consent", "consent_expired", "in_progress", "suspended", "clear", "consider", "canceled"]


def stage(snapshot: ProviderSnapshot) -> Stage:
    """Where the check stands by the provider's word. A disputed report is ``in_progress``: nothing
    is decided while the engineer disputes it (the caller pauses an adverse action on it)."""
    if snapshot.report_id is None:
        if snapshot.invitation_status == "expired":
            return "consent_expired"
        return "awaiting_consent"
    if snapshot.report_status == "complete" and snapshot.result is not None:
        return "clear" if snapshot.result == "clear" else "consider"
    if snapshot.report_status == "canceled":
        return "canceled"
    if snapshot.report_status in ("suspended", "paused"):
        return "suspended"
    return "in_progress"


def disputed(snapshot: ProviderSnapshot) -> bool:
    return snapshot.report_status == "dispute" or snapshot.adverse_action_status == "dispute"


# ---------------------------------------------------------------- the child workflow's contract


class ScreeningInput(Model):
    engagement_workflow_id: str
    engagement_id: str
    client: str
    engineer: EngineerSpec
    provider: Literal["checkr"]
    """The adapter the worker uses; its base URL and API key are the worker's settings, never here."""
    reminder_interval: timedelta
    consent_deadline: timedelta
    poll_interval: timedelta
    adverse_action_wait: timedelta
    managers: list[Recipient]
    """Who hears about the check's progress: the recipients of the engagement's check results."""


class OpenCheck(Model):
    """Create (or find again) the candidate and its invitation for one check workflow."""

    check_workflow_id: str
    engagement_id: str
    name: str
    email: str
    jurisdiction: str
    package: str


class ReadCheck(Model):
    check_workflow_id: str
    snapshot: ProviderSnapshot
    """The ids known so far: the read follows invitation -> report -> adverse action."""


class StartAdverseAction(Model):
    check_workflow_id: str
    report_id: ProviderId
    post_notice_at: datetime
    """When the provider may send the post-adverse notice (the end of the waiting period)."""


class ScreeningAudit(Model):
    engagement_id: str
    check_workflow_id: str
    at: datetime
    actor: str
    action: str
    details: dict[str, str]
    """Ids, states, decisions and reasons: no personal data beyond what the audit log already holds."""


class Adjudicate(Model):
    """A person's decision on a report that needs one (``consider``), with the reason, audited."""

    actor: Annotated[str, Text(200)]
    decision: Literal["engaged", "adverse_action"]
    reason: LongText


class ScreeningView(Model):
    check_workflow_id: str
    engineer: str
    """The engineer's email (the query answer travels encrypted like every payload)."""
    provider: str
    package: str | None
    checks: list[str]
    stage: str
    """A short state: awaiting_consent, in_progress, suspended, awaiting_adjudication, adverse_action_pending,
    disputed, or the final outcome."""
    snapshot: ProviderSnapshot | None
    adjudication: Adjudicate | None
    final_at: datetime | None
    """When a pending adverse action becomes final (unless disputed)."""
    outcome: str | None


def adjudication_problem(view: ScreeningView, command: Adjudicate) -> str | None:
    """Why an adjudication is refused, or None: only a report awaiting one can be adjudicated."""
    if view.stage != "awaiting_adjudication":
        return f"no report awaits adjudication (the check is {view.stage.replace('_', ' ')})"
    if not command.reason.strip():
        return "a reason is required"
    return None


SCREENING_SIGNAL = "screening_report_changed"
"""The child's signal: a fresh ProviderSnapshot (sent by the provider webhook after its re-read)."""


def screening_input(spec: EngagementSpec, engineer: EngineerSpec, engagement_workflow_id: str) -> ScreeningInput:
    """The provider check's input, from the spec (only for a spec whose screening names a provider)."""
    if spec.screening is None or spec.screening.provider == "manual":
        raise ValueError("this engagement's checks are recorded by a person, not run by a provider")
    return ScreeningInput(
        engagement_workflow_id=engagement_workflow_id,
        engagement_id=engagement_workflow_id,
        client=spec.client.name,
        engineer=engineer,
        provider=spec.screening.provider,
        reminder_interval=spec.check_reminder_interval,
        consent_deadline=spec.screening.consent_deadline,
        poll_interval=spec.screening.poll_interval,
        adverse_action_wait=spec.screening.adverse_action_wait,
        managers=recipients(EmailKind.CHECK_PROGRESS, spec),
    )
