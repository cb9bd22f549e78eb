"""Telling the client that access came back after an emergency revocation, once the IAM confirms it.

``restore_access`` (``people.py``) lifts the suspension; the workflow converges the IAM on the plan
and reads it back. Only when every restored engineer holds exactly what the plan says is the
``access_restored`` notice queued, with the groups as read back, like the emergency revocation
report (``lifecycle.report_emergency``).

``restore_access`` sets ``state.restoration`` with ``begin_restoration``; after each convergence the
IAM lane calls ``report_restoration`` and clears it once the notice is queued.
"""

from __future__ import annotations

from domain import email_builders as facts
from domain.access import plan_engineer
from domain.decisions.change import Change
from domain.state import AccessRestoration, EngineerState

UNKNOWN_REASON = "an emergency revocation"


def begin_restoration(change: Change, actor: str, targets: list[EngineerState]) -> AccessRestoration:
    """What to remember when ``restore_access`` lifts a suspension (before the IAM has caught up)."""
    emergency = change.state.emergency
    return AccessRestoration(
        actor=actor,
        reason=emergency.reason if emergency else (change.state.last_emergency_reason or UNKNOWN_REASON),
        requested_at=change.now,
        emails=sorted(e.email for e in targets if not e.removed),
    )


def restored_as_planned(change: Change, engineer: EngineerState) -> bool:
    """The IAM, as last read back, holds exactly this engineer's plan."""
    state = change.state
    plan = plan_engineer(change.spec.roles, engineer, state.phase, all_suspended=state.access_suspended)
    return engineer.identity_active == plan.active and set(engineer.groups) == set(plan.groups)


def report_restoration(change: Change, restoration: AccessRestoration) -> bool:
    """Queue the notice once every restored engineer's access is confirmed; False while it is not.

    An engineer removed or suspended again meanwhile is left out of the notice; when nobody is left
    there is nothing to announce and the restoration is done (True, nothing queued).
    """
    state = change.state
    restored = [
        e
        for e in state.engineers
        if e.email in restoration.emails and not e.removed and not e.suspended and not state.access_suspended
    ]
    if not all(restored_as_planned(change, e) for e in restored):
        return False
    if not restored:
        return True
    change.audit(restoration.actor, "access_restore_confirmed", engineers=[e.email for e in restored])
    change.email(facts.access_restored(change.spec, state, change.now, restored, restoration.reason, restoration.actor))
    return True
