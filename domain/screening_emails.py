"""Builders of the screening provider's emails: where a check stands, and the pre-adverse notice."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from domain.email_builders import check_labels, iso
from domain.email_facts import CheckPreAdverseNoticeFacts, CheckProgressFacts
from domain.spec import EngineerSpec

CheckProgress = Literal["awaiting_adjudication", "adverse_action", "disputed", "consent_expired", "suspended"]

_PROGRESS: dict[str, tuple[str, str]] = {
    "awaiting_adjudication": (
        "a decision is needed",
        "The screening provider's report has findings to consider. A person at the firm must decide, with a "
        "reason, whether the engineer is engaged or an adverse action starts; production access waits for it.",
    ),
    "adverse_action": (
        "adverse action started",
        "The firm started an adverse action on the report. The engineer has been sent a pre-adverse notice "
        "and may respond or dispute it; until the waiting period ends nothing is final, and production access "
        "stays closed.",
    ),
    "disputed": (
        "disputed by the engineer",
        "The engineer disputes the report with the screening provider. Everything is paused until the "
        "provider has looked into it; production access stays closed meanwhile.",
    ),
    "consent_expired": (
        "consent not given in time",
        "The engineer did not complete the screening provider's consent form in time, so the check was "
        "cancelled and production access will not be granted. Add the engineer again to start a new check.",
    ),
    "suspended": (
        "waiting for the engineer",
        "The screening provider needs more information from the engineer before the check can go on.",
    ),
}


def check_progress(
    client: str, engineer: EngineerSpec, checks: list[str], progress: CheckProgress, until: datetime | None = None
) -> CheckProgressFacts:
    headline, explanation = _PROGRESS[progress]
    return CheckProgressFacts(
        client=client,
        engineer=engineer.name,
        checks=check_labels(checks),
        headline=headline,
        explanation=explanation,
        until=iso(until) if until is not None else "",
    )


def check_pre_adverse_notice(
    client: str, engineer: EngineerSpec, checks: list[str], final_at: datetime
) -> CheckPreAdverseNoticeFacts:
    return CheckPreAdverseNoticeFacts(client=client, checks=check_labels(checks), final_at=iso(final_at))
