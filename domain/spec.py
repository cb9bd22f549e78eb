"""The engagement spec that ops write at contract signature, and the rules it must satisfy.

A spec that breaks a rule is rejected before any workflow starts; every error names the field.
Every value is bounded (``domain.bounds``): text that PostgreSQL and an email can carry, durations
that no date arithmetic can overflow, and, where a person writes the spec (``load_spec``,
``parse_spec``), duration floors that keep reminders from flooding anyone, unless short durations
are explicitly allowed (the demo, tests). The worker decoding its input checks everything but the
floors, so that a floor raised later never stops an engagement in flight.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import email_validator  # noqa: F401  (pydantic imports it lazily; load it before any workflow sandbox)
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    model_validator,
)

from domain.bounds import (
    CalendarDate,
    Duration,
    GroupName,
    PersonName,
    Reference,
    SingleLine,
    Text,
    WebUrl,
    edge_context,
)
from domain.documents import DocumentError, read_document

CONTRACT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"
MAX_ENGINEERS = 200
MAX_ROLES = 50
MAX_GROUPS_PER_LIST = 50

_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
# Each duration: its floor (where a person writes the spec) and its ceiling (always). README "Limits".
NoticePeriod = Annotated[timedelta, Duration(floor=_DAY, ceiling=3 * 365 * _DAY)]
Window = Annotated[timedelta, Duration(floor=_DAY, ceiling=365 * _DAY)]
ReminderInterval = Annotated[timedelta, Duration(floor=_HOUR, ceiling=90 * _DAY)]
ReviewInterval = Annotated[timedelta, Duration(floor=_DAY, ceiling=365 * _DAY)]
AlertDelay = Annotated[timedelta, Duration(floor=timedelta(minutes=5), ceiling=_DAY)]
ParkDelay = Annotated[timedelta, Duration(floor=timedelta(minutes=1), ceiling=_DAY)]
CertificationDue = Annotated[timedelta, Duration(floor=_DAY, ceiling=90 * _DAY)]
RetryDelay = Annotated[timedelta, Duration(floor=timedelta(minutes=5), ceiling=7 * _DAY)]
RoleName = Annotated[str, Text(100)]


class Strict(BaseModel):
    """Every spec model refuses unknown fields: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EngagementType(StrEnum):
    MANAGED_OUTSOURCING = "managed_outsourcing"
    STAFF_AUGMENTATION = "staff_augmentation"


class ServiceFunction(StrEnum):
    SOFTWARE_DEVELOPMENT = "software_development"
    INFRASTRUCTURE_MANAGEMENT = "infrastructure_management"
    TECHNICAL_OPERATIONS = "technical_operations"


def _known_timezone(name: str | None) -> str | None:
    if name is not None:
        try:
            if len(name) > 64:
                raise ValueError(name)
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Lisbon)") from None
    return name


TimeZoneName = Annotated[str | None, AfterValidator(_known_timezone)]


class Contact(Strict):
    name: PersonName
    """The person's full name, as used in emails."""
    email: EmailStr
    """Where this person receives the engagement's emails."""
    timezone: TimeZoneName = None
    """IANA time zone in which this person reads dates (UTC when unset)."""


class ClientContacts(Strict):
    signatory: Contact
    """Signs the NDA and the agreement; receives the NDA request."""
    engagement_manager: Contact
    """The client's manager of the engagement; receives notice, reports and timelines."""
    iam_owner: Contact
    """Owns the client's IAM; receives the access granted and the revocation evidence."""
    incoming_team_lead: Contact
    """Leads the team that takes over at the end; invited to the handover sessions."""


class Client(Strict):
    name: SingleLine
    """The client's legal or trading name."""
    contacts: ClientContacts
    """The client's people, by the role they play in the engagement."""


class RolePolicy(Strict):
    non_production: list[GroupName] = Field(default_factory=list, max_length=MAX_GROUPS_PER_LIST)
    """Groups in the client's IAM that every engineer of this role gets once the NDA is signed."""
    production: list[GroupName] = Field(default_factory=list, max_length=MAX_GROUPS_PER_LIST)
    """Groups that grant production access: only after that engineer's background check is cleared."""


class EngineerSpec(Strict):
    name: PersonName
    """The engineer's full name."""
    email: EmailStr
    """The engineer's email: also their user name in the client's IAM."""
    role: RoleName
    """A key of the spec's role policy."""
    production_access: bool = False
    """Whether this engineer needs production access (and so a cleared background check)."""
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 alpha-2 country whose law governs the background check."""
    timezone: TimeZoneName = None
    """IANA time zone in which the engineer reads dates (UTC when unset)."""


class IamEndpoint(Strict):
    scim_base_url: WebUrl
    """Base URL of the client's SCIM 2.0 service (the tenant), e.g. ``https://idp.example/scim/v2``."""
    token_ref: SingleLine | None = None
    """Name of the bearer token in the worker's secrets; the token itself never enters a workflow."""
    deprovision: Literal["deactivate", "delete"] = "deactivate"
    """What happens to an identity at the end: ``active=false`` (the Okta/Entra default) or deletion."""
    dialect: Literal["rfc7644", "entra"] = "rfc7644"
    """The member-removal form tried first: an RFC 7644 path filter, or Entra's remove-with-value form
    (the other is tried when the server refuses it, and remembered)."""
    discovery: Literal["core_fallback", "required"] = "core_fallback"
    """Missing or malformed SCIM discovery: fall back to RFC 7643's core User and Group, or refuse."""
    membership: Literal[
        "auto", "group_filter", "user_groups", "id_and_member_filter", "id_and_members_eq", "unobservable"
    ] = "auto"
    """How group membership is observed: probed (``auto``), or one way named; ``unobservable`` for an IAM
    that never shows it (every grant and revocation is then reported unverified)."""


class Screening(Strict):
    """How this engagement's background checks are run (README "Screening provider")."""

    provider: Literal["checkr", "manual"]
    """``checkr``: through the screening provider's API; ``manual``: results recorded by a person."""
    consent_deadline: Window = timedelta(days=7)
    """An invitation the engineer has not completed by then expires: the check ends cancelled."""
    poll_interval: ReminderInterval = timedelta(hours=6)
    """How often the provider is asked, in case its webhook was lost (the safety net)."""
    adverse_action_wait: Window = timedelta(days=7)
    """After a pre-adverse notice, how long the engineer has to respond before the action is final."""


class Agreement(Strict):
    nda_reference: Reference
    """The NDA's document reference."""
    ip_assignment_clause: Reference
    """Where the IP-assignment clause stands in the engagement agreement."""


class EngagementSpec(Strict):
    contract_id: str = Field(pattern=CONTRACT_ID_PATTERN)
    """The business key: one contract, one engagement, one workflow."""
    client: Client
    """Who the client is and who speaks for it."""
    firm_lead: Contact
    """The firm's delivery lead for this engagement."""
    engagement_type: EngagementType
    """Managed outsourcing (the firm manages the engineers) or staff augmentation (the client does)."""
    functions: list[ServiceFunction] = Field(min_length=1)
    """The functions in scope."""
    start_date: CalendarDate
    """The contractual start date."""
    agreement: Agreement
    """The NDA and IP-assignment references recorded with the engagement."""
    engineers: list[EngineerSpec] = Field(min_length=1, max_length=MAX_ENGINEERS)
    """The engineers assigned at signature."""
    roles: dict[RoleName, RolePolicy] = Field(min_length=1, max_length=MAX_ROLES)
    """The least-privilege policy: role name to the IAM groups it grants."""
    iam: IamEndpoint
    """The client's IAM, reached over SCIM 2.0."""
    notice_period: NoticePeriod = timedelta(days=60)
    """From notice to the formal end date."""
    transition_window: Window = timedelta(days=30)
    """After the end date, questions are answered for this long, with no system access."""
    nda_reminder_interval: ReminderInterval = timedelta(days=3)
    """How often the NDA request is repeated while it is unsigned."""
    nda_deadline: Window = timedelta(days=30)
    """After this long without a signed NDA the engagement is cancelled."""
    check_reminder_interval: ReminderInterval = timedelta(days=3)
    """How often an engineer is reminded to consent to their background check."""
    access_review_interval: ReviewInterval = timedelta(days=30)
    """How often, during delivery, the IAM's actual grants are reconciled with the policy."""
    handover_reminder_lead: Window = timedelta(days=14)
    """How long before the end date the missing handover items are chased."""
    revocation_alert_after: AlertDelay = timedelta(minutes=15)
    """An admin is alerted when the IAM has not confirmed a revocation within this long."""
    transition_closing_notice: Window = timedelta(days=7)
    """How long before the transition window closes the client is reminded that it will."""
    effect_park_after: ParkDelay = timedelta(minutes=15)
    """A side effect (email, record) still failing after this long is parked and an admin alerted."""
    parked_effect_retry_interval: RetryDelay = timedelta(hours=1)
    """How long a parked side effect waits before it is tried again by itself."""
    certification_default: Literal["keep", "revoke"] | None = None
    """Access certification: each periodic review asks the client's IAM owner, through a signed link, to
    keep or revoke each engineer; engineers left undecided at the due date are kept (and the firm's lead
    alerted) or revoked. Unset: no certification round (the review reconciles the policy only)."""
    certification_due: CertificationDue = timedelta(days=14)
    """How long the IAM owner has to answer a round (never past the next review)."""
    screening: Screening | None = None
    """How background checks run; unset: the firm-wide setting (SCREENING_PROVIDER) chosen at start."""

    @model_validator(mode="after")
    def _consistent(self) -> EngagementSpec:
        if len(set(self.functions)) != len(self.functions):
            raise ValueError("functions: a function is listed twice")
        seen: set[str] = set()
        for index, engineer in enumerate(self.engineers):
            key = engineer.email.lower()
            if key in seen:
                raise ValueError(f"engineers[{index}].email: duplicate engineer email {engineer.email}")
            seen.add(key)
            if engineer.role not in self.roles:
                raise ValueError(
                    f"engineers[{index}].role: unknown role {engineer.role!r} (known: {', '.join(sorted(self.roles))})"
                )
            if engineer.production_access and not self.roles[engineer.role].production:
                raise ValueError(
                    f"engineers[{index}].production_access: role {engineer.role!r} grants no production groups"
                )
        for role, policy in self.roles.items():
            if policy.production and not any(e.role == role and e.production_access for e in self.engineers):
                raise ValueError(
                    f"roles.{role}.production: production groups but no engineer of this role "
                    "is allowed production access"
                )
            groups = policy.non_production + policy.production
            if len(set(groups)) != len(groups):
                raise ValueError(f"roles.{role}: a group is listed twice")
        return self

    def engineer(self, email: str) -> EngineerSpec | None:
        return next((e for e in self.engineers if e.email.lower() == email.lower()), None)


class SpecError(ValueError):
    """A spec file that cannot be read or breaks a rule; the message names every offending field."""


MAX_REPORTED_ERRORS = 20


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        name = part if re.fullmatch(r"[\w\[\]-]{1,60}", part) else repr(part[:40]) + ("..." if len(part) > 40 else "")
        path += f".{name}" if path else name
    return path or "spec"


def describe_validation_error(error: ValidationError) -> str:
    lines = []
    items = error.errors(include_url=False, include_input=False)
    for item in items[:MAX_REPORTED_ERRORS]:
        message = re.sub(r"^Value error, ", "", item["msg"])
        location = _field_path(tuple(item["loc"]))
        # Errors raised by the cross-field check already name their field.
        lines.append(message if location == "spec" else f"{location}: {message}")
    if len(items) > MAX_REPORTED_ERRORS:
        lines.append(f"... and {len(items) - MAX_REPORTED_ERRORS} more")
    return "\n".join(lines)


def parse_spec(data: object, *, allow_short_durations: bool = False) -> EngagementSpec:
    """Validate a spec a person wrote: every rule, with the duration floors unless short ones are allowed."""
    try:
        return EngagementSpec.model_validate(data, context=edge_context(allow_short_durations=allow_short_durations))
    except ValidationError as error:
        raise SpecError(describe_validation_error(error)) from None


def load_spec(path: Path, *, allow_short_durations: bool = False) -> EngagementSpec:
    """Read a YAML or JSON spec (JSON is YAML) within the limits of ``domain.documents``; validate it."""
    try:
        data = read_document(path)
    except DocumentError as error:
        raise SpecError(str(error)) from None
    return parse_spec(data, allow_short_durations=allow_short_durations)
