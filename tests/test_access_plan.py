"""The least-privilege plan, a pure function, for every phase and check state."""

from __future__ import annotations

import pytest

from domain.access import NO_ACCESS, checks_for, plan_for
from domain.spec import RolePolicy
from domain.vocabulary import CheckStatus, Phase

DEV = RolePolicy(non_production=["repo-write", "staging"], production=["prod-read"])


@pytest.mark.parametrize("phase", [Phase.AWAITING_NDA, Phase.TRANSITION, Phase.CLOSED, Phase.CANCELLED])
@pytest.mark.parametrize("check", list(CheckStatus))
def test_nothing_exists_before_the_nda_or_after_the_end(phase: Phase, check: CheckStatus) -> None:
    assert plan_for(policy=DEV, production_access=True, check=check, removed=False, phase=phase) == NO_ACCESS


@pytest.mark.parametrize("phase", [Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE])
def test_production_groups_only_with_a_cleared_check(phase: Phase) -> None:
    for check in (CheckStatus.PENDING, CheckStatus.IN_PROGRESS, CheckStatus.CANCELLED, CheckStatus.NOT_REQUIRED):
        plan = plan_for(policy=DEV, production_access=True, check=check, removed=False, phase=phase)
        assert plan.active and plan.groups == {"repo-write", "staging"}
    cleared = plan_for(policy=DEV, production_access=True, check=CheckStatus.CLEARED, removed=False, phase=phase)
    assert cleared.groups == {"repo-write", "staging", "prod-read"}
    no_need = plan_for(policy=DEV, production_access=False, check=CheckStatus.CLEARED, removed=False, phase=phase)
    assert no_need.groups == {"repo-write", "staging"}


def test_a_failed_check_or_a_removal_leaves_nothing() -> None:
    failed = plan_for(policy=DEV, production_access=True, check=CheckStatus.FAILED, removed=False, phase=Phase.DELIVERY)
    removed = plan_for(
        policy=DEV, production_access=True, check=CheckStatus.CLEARED, removed=True, phase=Phase.DELIVERY
    )
    unknown_role = plan_for(
        policy=None, production_access=False, check=CheckStatus.NOT_REQUIRED, removed=False, phase=Phase.DELIVERY
    )
    assert failed == removed == unknown_role == NO_ACCESS


def test_grants_never_exceed_the_role() -> None:
    for phase in Phase:
        for check in CheckStatus:
            for production in (True, False):
                plan = plan_for(policy=DEV, production_access=production, check=check, removed=False, phase=phase)
                assert plan.groups <= set(DEV.non_production) | set(DEV.production)


def test_criminal_record_checks_only_where_the_jurisdiction_permits() -> None:
    assert checks_for("US") == ["credentials_verification", "criminal_record"]
    assert checks_for("DE") == ["credentials_verification"]
