"""The least-privilege plan: exactly the IAM state the policy allows, as a pure function.

Workflows diff this plan against what the IAM last read back; nothing else decides a grant.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from domain.spec import RolePolicy
from domain.state import EngineerState
from domain.vocabulary import ACCESS_PHASES, CheckStatus, Phase


class AccessPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    active: bool
    """Whether the engineer's identity should be active in the client's IAM."""
    groups: frozenset[str]
    """Exactly the groups the engineer should be a member of."""


NO_ACCESS = AccessPlan(active=False, groups=frozenset())


def plan_for(
    *,
    policy: RolePolicy | None,
    production_access: bool,
    check: CheckStatus,
    removed: bool,
    phase: Phase,
    suspended: bool = False,
) -> AccessPlan:
    """The access one engineer should hold right now.

    - nothing before the NDA is signed, after the end date, once removed, after a failed check,
      or while access is suspended by an emergency revocation;
    - the role's non-production groups during onboarding, delivery and notice;
    - the role's production groups only with production access *and* a cleared check.
    """
    if phase not in ACCESS_PHASES or removed or suspended or policy is None or check is CheckStatus.FAILED:
        return NO_ACCESS
    groups = set(policy.non_production)
    if production_access and check is CheckStatus.CLEARED:
        groups.update(policy.production)
    return AccessPlan(active=True, groups=frozenset(groups))


def plan_engineer(
    roles: dict[str, RolePolicy], engineer: EngineerState, phase: Phase, *, all_suspended: bool = False
) -> AccessPlan:
    return plan_for(
        policy=roles.get(engineer.spec.role),
        production_access=engineer.spec.production_access,
        check=engineer.check,
        removed=engineer.removed,
        phase=phase,
        suspended=engineer.suspended or all_suspended,
    )


def managed_groups(roles: dict[str, RolePolicy]) -> frozenset[str]:
    """Every group the engagement's policy can grant: the scope of reviews and sweeps."""
    return frozenset(g for policy in roles.values() for g in policy.non_production + policy.production)


def is_in_step(plan: AccessPlan, engineer: EngineerState) -> bool:
    """Whether what the IAM last read back already matches the plan."""
    return plan.active == engineer.identity_active and plan.groups == frozenset(engineer.groups)


# Jurisdictions whose law does not permit a criminal-record check for employment screening
# of this kind. Credentials are verified everywhere.
CRIMINAL_RECORD_CHECK_RESTRICTED = frozenset({"DE", "FI", "FR", "NL", "SE", "NO", "DK"})


def checks_for(jurisdiction: str) -> list[str]:
    """The background checks that may be run for an engineer in this jurisdiction."""
    checks = ["credentials_verification"]
    if jurisdiction.upper() not in CRIMINAL_RECORD_CHECK_RESTRICTED:
        checks.append("criminal_record")
    return checks
