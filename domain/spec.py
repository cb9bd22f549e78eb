"""The engagement spec that ops write at contract signature, and the rules it must satisfy.

A spec that breaks a rule is rejected before any workflow starts; every error names the field.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import email_validator  # noqa: F401  (pydantic imports it lazily; load it before any workflow sandbox)
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    model_validator,
)

CONTRACT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be a positive duration")
    return value


PositiveDuration = Annotated[timedelta, AfterValidator(_positive)]
"""A duration that is strictly positive: ISO 8601 (``P60D``, ``PT2M``) or seconds."""


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
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Europe/Lisbon)") from None
    return name


TimeZoneName = Annotated[str | None, AfterValidator(_known_timezone)]


class Contact(Strict):
    name: str = Field(min_length=1)
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
    name: str = Field(min_length=1)
    """The client's legal or trading name."""
    contacts: ClientContacts
    """The client's people, by the role they play in the engagement."""


class RolePolicy(Strict):
    non_production: list[str] = Field(default_factory=list)
    """Groups in the client's IAM that every engineer of this role gets once the NDA is signed."""
    production: list[str] = Field(default_factory=list)
    """Groups that grant production access: only after that engineer's background check is cleared."""


class EngineerSpec(Strict):
    name: str = Field(min_length=1)
    """The engineer's full name."""
    email: EmailStr
    """The engineer's email: also their user name in the client's IAM."""
    role: str = Field(min_length=1)
    """A key of the spec's role policy."""
    production_access: bool = False
    """Whether this engineer needs production access (and so a cleared background check)."""
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}$")
    """ISO 3166-1 alpha-2 country whose law governs the background check."""
    timezone: TimeZoneName = None
    """IANA time zone in which the engineer reads dates (UTC when unset)."""


class IamEndpoint(Strict):
    scim_base_url: str = Field(pattern=r"^https?://[^\s]+$")
    """Base URL of the client's SCIM 2.0 service (the tenant), e.g. ``https://idp.example/scim/v2``."""
    token_ref: str | None = None
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


class Agreement(Strict):
    nda_reference: str = Field(min_length=1)
    """The NDA's document reference."""
    ip_assignment_clause: str = Field(min_length=1)
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
    start_date: date
    """The contractual start date."""
    agreement: Agreement
    """The NDA and IP-assignment references recorded with the engagement."""
    engineers: list[EngineerSpec] = Field(min_length=1)
    """The engineers assigned at signature."""
    roles: dict[str, RolePolicy] = Field(min_length=1)
    """The least-privilege policy: role name to the IAM groups it grants."""
    iam: IamEndpoint
    """The client's IAM, reached over SCIM 2.0."""
    notice_period: PositiveDuration = timedelta(days=60)
    """From notice to the formal end date."""
    transition_window: PositiveDuration = timedelta(days=30)
    """After the end date, questions are answered for this long, with no system access."""
    nda_reminder_interval: PositiveDuration = timedelta(days=3)
    """How often the NDA request is repeated while it is unsigned."""
    nda_deadline: PositiveDuration = timedelta(days=30)
    """After this long without a signed NDA the engagement is cancelled."""
    check_reminder_interval: PositiveDuration = timedelta(days=3)
    """How often an engineer is reminded to consent to their background check."""
    access_review_interval: PositiveDuration = timedelta(days=30)
    """How often, during delivery, the IAM's actual grants are reconciled with the policy."""
    handover_reminder_lead: PositiveDuration = timedelta(days=14)
    """How long before the end date the missing handover items are chased."""
    revocation_alert_after: PositiveDuration = timedelta(minutes=15)
    """An admin is alerted when the IAM has not confirmed a revocation within this long."""
    transition_closing_notice: PositiveDuration = timedelta(days=7)
    """How long before the transition window closes the client is reminded that it will."""
    effect_park_after: PositiveDuration = timedelta(minutes=15)
    """A side effect (email, record) still failing after this long is parked and an admin alerted."""
    parked_effect_retry_interval: PositiveDuration = timedelta(hours=1)
    """How long a parked side effect waits before it is tried again by itself."""

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
            if any(not g.strip() for g in groups):
                raise ValueError(f"roles.{role}: a group name is empty")
        return self

    def engineer(self, email: str) -> EngineerSpec | None:
        return next((e for e in self.engineers if e.email.lower() == email.lower()), None)


class SpecError(ValueError):
    """A spec file that cannot be read or breaks a rule; the message names every offending field."""


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "spec"


def describe_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = re.sub(r"^Value error, ", "", item["msg"])
        location = _field_path(tuple(item["loc"]))
        # Errors raised by the cross-field check already name their field.
        lines.append(message if location == "spec" else f"{location}: {message}")
    return "\n".join(lines)


def parse_spec(data: object) -> EngagementSpec:
    try:
        return EngagementSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(describe_validation_error(error)) from None


def load_spec(path: Path) -> EngagementSpec:
    """Read a YAML or JSON spec (JSON is YAML) and validate it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SpecError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise SpecError(f"{path} is not valid YAML or JSON: {error}") from None
    return parse_spec(data)
