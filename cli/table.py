"""What the CLI's help needs from the domain, as plain strings: importing the domain (pydantic)
takes seconds, and ``--help`` must answer at once. ``tests/unit/test_cli_help.py`` holds this copy
equal to ``domain.phases``, ``domain.vocabulary`` and ``domain.email_kinds``."""

from __future__ import annotations

from typing import Final

PHASES: Final = ("awaiting_nda", "onboarding", "delivery", "notice", "transition", "closed", "cancelled")
DOCUMENTS: Final = (
    "architecture_documentation",
    "system_runbooks",
    "infrastructure_documentation",
    "vendor_contract_inventory",
    "decision_logs",
)
EMAIL_KINDS: Final = (
    "nda_request",
    "nda_reminder",
    "nda_recorded",
    "check_consent_request",
    "check_consent_reminder",
    "check_result",
    "access_granted",
    "engineer_added",
    "engineer_removed",
    "role_changed",
    "access_review",
    "notice_received",
    "end_date_moved",
    "handover_reminder",
    "session_invite",
    "session_rescheduled",
    "session_cancelled",
    "revocation_report",
    "emergency_revocation",
    "access_restored",
    "transition_open",
    "transition_closing",
    "closing_report",
    "cancellation",
    "check_progress",
    "check_pre_adverse_notice",
    "access_certification",
    "certification_escalation",
)

COMMANDS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    # cli name: (what it does, the phases in which it is legal)
    "nda-signed": ("record the NDA as signed", ("awaiting_nda",)),
    "add-engineer": ("staff one more engineer", ("onboarding", "delivery")),
    "remove-engineer": ("take an engineer off; access ends now", ("onboarding", "delivery", "notice")),
    "change-role": ("give an engineer another role (and access)", ("onboarding", "delivery", "notice")),
    "record-check": ("record a background check result", ("onboarding", "delivery", "notice")),
    "give-notice": ("give notice; the end date follows", ("onboarding", "delivery")),
    "move-end-date": ("move the agreed end date", ("notice",)),
    "record-document": ("record a knowledge-transfer document as delivered", ("notice", "transition")),
    "schedule-session": ("schedule a handover session", ("notice",)),
    "reschedule-session": ("move a handover session", ("notice",)),
    "cancel-session": ("cancel a handover session", ("notice",)),
    "session-held": ("record a handover session as held", ("notice", "transition")),
    "ask": ("record a transition-window question", ("transition",)),
    "answer": ("answer a transition-window question", ("transition",)),
    "review-access": ("reconcile the IAM now", ("delivery",)),
    "certify": ("keep or revoke an engineer in an access certification round", ("delivery", "notice")),
    "revoke-now": (
        "emergency: revoke one engineer's access, or everyone's, at once",
        ("awaiting_nda", "onboarding", "delivery", "notice", "transition"),
    ),
    "restore-access": ("lift an emergency revocation", ("onboarding", "delivery", "notice")),
    "cancel": ("cancel before delivery", ("awaiting_nda", "onboarding")),
    "retry-effect": (
        "retry a parked side effect now",
        ("awaiting_nda", "onboarding", "delivery", "notice", "transition", "closed", "cancelled"),
    ),
    "drop-effect": (
        "give up a parked side effect (audited)",
        ("awaiting_nda", "onboarding", "delivery", "notice", "transition", "closed", "cancelled"),
    ),
}
