"""The wording of every email: a subject and a few blocks per kind, with the facts each one needs.

A template is a subject and a few blocks (paragraphs, a table of facts, a list); the renderer gives
each block its plain-text and its HTML shape. Dates arrive as ISO 8601 UTC strings and are shown in
the recipient's time zone by the ``when`` filter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined, Template, meta, pass_context
from jinja2.runtime import Context

from domain.email_kinds import EmailKind
from emails.calendar import CalendarMethod
from emails.dates import local_time

SESSION_KINDS: dict[EmailKind, CalendarMethod] = {
    EmailKind.SESSION_INVITE: CalendarMethod.REQUEST,
    EmailKind.SESSION_RESCHEDULED: CalendarMethod.REQUEST,
    EmailKind.SESSION_CANCELLED: CalendarMethod.CANCEL,
}
"""Kinds that carry a calendar invitation, and its iTIP method."""


@pass_context
def _when(context: Context, value: object) -> str:
    timezone = context.get("recipient_timezone")
    return local_time(value, timezone if isinstance(timezone, str) else None)


_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_env.filters["when"] = _when

RESERVED_NAMES = frozenset({"name", "recipient_timezone"})
"""Set by the renderer from the recipient, never taken from the facts."""


@functools.lru_cache(maxsize=512)
def compiled(source: str) -> Template:
    return _env.from_string(source)


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Facts:
    """A short table of labelled facts (plain text: ``Label: value`` lines)."""

    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Listing:
    """A multi-line fact; lines that start with ``- `` become a bulleted list in HTML."""

    text: str


Block = Paragraph | Facts | Listing


@dataclass(frozen=True)
class EmailTemplate:
    subject: str
    blocks: tuple[Block, ...]


def _t(subject: str, *blocks: Block) -> EmailTemplate:
    return EmailTemplate(subject=subject, blocks=blocks)


_SESSION_FACTS = Facts(
    (
        ("Session", "{{ title }}"),
        ("When", "{{ starts_at | when }}"),
        ("Duration", "{{ duration_minutes }} minutes"),
        ("Where", "{% if where is defined %}{{ where }}{% endif %}"),
    )
)
_ATTENDEES = (
    Paragraph("{% if attendees is defined %}Attendees:{% endif %}"),
    Listing("{% if attendees is defined %}{{ attendees }}{% endif %}"),
)

TEMPLATES: dict[EmailKind, EmailTemplate] = {
    EmailKind.NDA_REQUEST: _t(
        "{{ client }}: please sign the NDA for contract {{ contract_id }}",
        Paragraph(
            "Thank you for signing contract {{ contract_id }}. Before we share any information or request "
            "any access, we need the NDA signed."
        ),
        Facts(
            (
                ("NDA", "{{ nda_reference }}"),
                ("IP assignment", "{{ ip_assignment_clause }}"),
                ("Please sign by", "{{ deadline | when }}"),
            )
        ),
        Paragraph(
            "{% if firm_lead is defined %}How to sign: sign the NDA ({{ nda_reference }}) and return the signed "
            "copy to {{ firm_lead }} ({{ firm_lead_email }}), who leads this engagement for us; replying to this "
            "email with the signed document attached is enough. For any question about the NDA or the contract, "
            "contact {{ firm_lead }} at {{ firm_lead_email }}.{% endif %}"
        ),
        Paragraph("Without the signed NDA the engagement is cancelled on {{ deadline | when }}."),
    ),
    EmailKind.NDA_REMINDER: _t(
        "Reminder {{ reminder }}: the NDA for contract {{ contract_id }} awaits signature",
        Paragraph(
            "The NDA ({{ nda_reference }}) for contract {{ contract_id }} is not signed yet. "
            "This is reminder {{ reminder }}."
        ),
        Paragraph(
            "{% if firm_lead is defined %}Please return the signed copy to {{ firm_lead }} "
            "({{ firm_lead_email }}), or reply to this email with it attached; {{ firm_lead }} also answers any "
            "question about it.{% endif %}"
        ),
        Paragraph("The engagement is cancelled on {{ deadline | when }} without it."),
    ),
    EmailKind.NDA_RECORDED: _t(
        "{{ client }}: NDA recorded, onboarding begins",
        Paragraph("The NDA for contract {{ contract_id }} was recorded as signed."),
        Facts(
            (
                ("Signed by", "{{ signed_by }}"),
                ("Signed at", "{{ signed_at | when }}"),
                ("Engineers to onboard", "{{ engineer_count }}"),
            )
        ),
        Paragraph("Onboarding begins now."),
    ),
    EmailKind.CHECK_CONSENT_REQUEST: _t(
        "Your consent for a background check ({{ client }})",
        Paragraph(
            "Your role on the {{ client }} engagement needs production access, which is granted only after "
            "a cleared background check."
        ),
        Facts((("Jurisdiction", "{{ jurisdiction }}"), ("Checks", "{{ checks }}"))),
        Paragraph(
            "Please give your consent to the screening provider when it writes to you. Until the check is "
            "cleared you keep only the access that needs no check."
        ),
    ),
    EmailKind.CHECK_CONSENT_REMINDER: _t(
        "Reminder: background check consent ({{ client }})",
        Paragraph(
            "We still need your consent for the background check ({{ checks }}) before production access on "
            "the {{ client }} engagement can be granted."
        ),
    ),
    EmailKind.CHECK_RESULT: _t(
        "{{ client }}: background check {{ outcome }} for {{ engineer }}",
        Paragraph("The background check of {{ engineer }} ({{ checks }}) is {{ outcome }}."),
        Paragraph("{{ consequence }}"),
    ),
    EmailKind.ACCESS_GRANTED: _t(
        "{{ client }}: engineers onboarded and access granted",
        Paragraph(
            "Onboarding for contract {{ contract_id }} is complete. Each engineer holds exactly the groups of "
            "their role in your IAM, read back after granting:"
        ),
        Listing("{{ roster }}"),
    ),
    EmailKind.ENGINEER_ADDED: _t(
        "{{ client }}: {{ engineer }} joins the engagement",
        Paragraph(
            "{{ engineer }} joins the engagement as {{ role }}. Their access follows the role's policy"
            "{{ production_note }}; you will hear when it is granted."
        ),
    ),
    EmailKind.ENGINEER_REMOVED: _t(
        "{{ client }}: {{ engineer }} leaves the engagement, access revoked",
        Paragraph(
            "{{ engineer }} ({{ role }}) left the engagement. Every grant was revoked at once. Read back from "
            "your IAM: {{ evidence }}."
        ),
    ),
    EmailKind.ROLE_CHANGED: _t(
        "{{ client }}: {{ engineer }} now works as {{ role }}",
        Paragraph(
            "{{ engineer }} changed role to {{ role }}. Their access now follows that role exactly: {{ groups }}."
        ),
    ),
    EmailKind.ACCESS_REVIEW: _t(
        "{{ client }}: access review, {{ review_result }}",
        Paragraph(
            "The access review of {{ reviewed_at | when }} compared what your IAM holds with each role's "
            "policy: {{ review_result }}."
        ),
        Listing("{{ changes }}"),
    ),
    EmailKind.NOTICE_RECEIVED: _t(
        "{{ client }}: notice received, the engagement ends {{ end_date | when }}",
        Paragraph("Notice was given by the {{ given_by }} on {{ notice_date | when }}."),
        Facts(
            (
                ("End date (all access revoked)", "{{ end_date | when }}"),
                ("Transition window closes", "{{ transition_ends_at | when }}"),
            )
        ),
        Paragraph(
            "Before the end we deliver: {{ documents }}, and hold the handover sessions with your incoming team."
        ),
    ),
    EmailKind.END_DATE_MOVED: _t(
        "{{ client }}: the end date moved to {{ end_date | when }}",
        Paragraph(
            "The end date moved from {{ previous_end_date | when }} to {{ end_date | when }}{{ reason_note }}. "
            "Every grant is revoked at that instant."
        ),
        Facts(
            (
                ("New end date", "{{ end_date | when }}"),
                ("Transition window closes", "{{ transition_ends_at | when }}"),
            )
        ),
    ),
    EmailKind.HANDOVER_REMINDER: _t(
        "{{ client }}: handover items still missing before {{ end_date | when }}",
        Paragraph("The engagement ends {{ end_date | when }}. Still missing:"),
        Facts(
            (
                ("Documents", "{{ missing_documents }}"),
                ("Handover sessions not yet held", "{{ open_sessions }}"),
            )
        ),
    ),
    EmailKind.SESSION_INVITE: _t(
        "Handover session: {{ title }} ({{ starts_at | when }})",
        Paragraph('You are invited to the handover session "{{ title }}" with the {{ client }} incoming team.'),
        _SESSION_FACTS,
        *_ATTENDEES,
        Paragraph("The calendar invitation is attached."),
    ),
    EmailKind.SESSION_RESCHEDULED: _t(
        "Handover session moved: {{ title }} ({{ starts_at | when }})",
        Paragraph(
            'The handover session "{{ title }}" with the {{ client }} incoming team moved to {{ starts_at | when }}.'
        ),
        _SESSION_FACTS,
        *_ATTENDEES,
        Paragraph("The updated calendar invitation is attached; it replaces the earlier one."),
    ),
    EmailKind.SESSION_CANCELLED: _t(
        "Handover session cancelled: {{ title }} ({{ starts_at | when }})",
        Paragraph(
            'The handover session "{{ title }}" with the {{ client }} incoming team, planned for '
            "{{ starts_at | when }} ({{ duration_minutes }} minutes), is cancelled."
        ),
        Paragraph("{% if reason is defined and reason %}Reason: {{ reason }}{% endif %}"),
        Paragraph("The attached cancellation removes it from your calendar."),
    ),
    EmailKind.REVOCATION_REPORT: _t(
        "{{ client }}: all access revoked on {{ revoked_at | when }}",
        Paragraph(
            "At the end date ({{ revoked_at | when }}) every grant was revoked. What your IAM showed when we "
            "read it back afterwards:"
        ),
        Listing("{{ evidence }}"),
    ),
    EmailKind.EMERGENCY_REVOCATION: _t(
        "{{ client }}: access revoked now (emergency)",
        Paragraph(
            "By an emergency command, access to your systems was revoked at {{ revoked_at | when }}, "
            "before the agreed end date."
        ),
        Facts((("Reason", "{{ reason }}"), ("Revoked at", "{{ revoked_at | when }}"))),
        Paragraph("Engineers whose every grant was revoked, read back from your IAM:"),
        Listing("{{ engineers }}"),
    ),
    EmailKind.ACCESS_RESTORED: _t(
        "{{ client }}: access restored after the emergency revocation",
        Paragraph(
            "The emergency revocation ({{ reason }}) was lifted by {{ restored_by }}. Access was restored to "
            "each role's policy, and your IAM confirmed it at {{ restored_at | when }}."
        ),
        Facts((("Restored by", "{{ restored_by }}"), ("Confirmed at", "{{ restored_at | when }}"))),
        Paragraph("Engineers whose access is back, with the groups read back from your IAM:"),
        Listing("{{ engineers }}"),
    ),
    EmailKind.TRANSITION_OPEN: _t(
        "{{ client }}: the transition window is open until {{ transition_ends_at | when }}",
        Paragraph(
            "The transition window is open until {{ transition_ends_at | when }}. Send your questions by replying "
            "to this email; each one is tracked until it is answered. No system access remains."
        ),
    ),
    EmailKind.TRANSITION_CLOSING: _t(
        "{{ client }}: the transition window closes {{ transition_ends_at | when }}",
        Paragraph(
            "The transition window closes soon, on {{ transition_ends_at | when }}. Questions sent after that are "
            "no longer covered by the engagement."
        ),
        Facts((("Window closes", "{{ transition_ends_at | when }}"), ("Open questions", "{{ open_questions }}"))),
    ),
    EmailKind.CLOSING_REPORT: _t(
        "{{ client }}: engagement {{ contract_id }} closed",
        Paragraph("Engagement {{ contract_id }} is closed."),
        Facts(
            (
                ("Documents delivered", "{{ documents }}"),
                ("Handover sessions held", "{{ sessions }}"),
                ("Questions answered", "{{ questions }}"),
                ("Final sweep", "{{ sweep }}"),
            )
        ),
    ),
    EmailKind.CANCELLATION: _t(
        "{{ client }}: engagement {{ contract_id }} cancelled",
        Paragraph(
            "Engagement {{ contract_id }} was cancelled: {{ reason }}. No information was shared and no access remains."
        ),
    ),
    EmailKind.CHECK_PROGRESS: _t(
        "Background check of {{ engineer }}: {{ headline }} ({{ client }})",
        Paragraph(
            "{{ explanation }}{% if until %} It becomes final on {{ until | when }} unless the engineer disputes "
            "it.{% endif %}"
        ),
        Facts((("Engineer", "{{ engineer }}"), ("Checks", "{{ checks }}"))),
    ),
    EmailKind.CHECK_PRE_ADVERSE_NOTICE: _t(
        "Your background check: please read before {{ final_at | when }} ({{ client }})",
        Paragraph(
            "The screening provider's report on your background check ({{ checks }}) contains information that "
            "may lead us to decide that you cannot have production access on the {{ client }} engagement. "
            "Nothing is final yet."
        ),
        Paragraph(
            "The screening provider is sending you a copy of the report and a summary of your rights. If anything "
            "in it is wrong or incomplete, tell the provider (you can dispute the report) or reply to this email."
        ),
        Facts((("Decision final on", "{{ final_at | when }}"),)),
        Paragraph("If you dispute the report, nothing becomes final until the provider has looked into it."),
    ),
    EmailKind.ACCESS_CERTIFICATION: _t(
        "{{ client }}: please certify your engineers' access by {{ due_at | when }}",
        Paragraph(
            "It is time for the periodic access certification of contract {{ contract_id }} (round {{ round }}). "
            "For each engineer below, please tell us whether they should keep their access or lose it."
        ),
        Listing("{{ engineers }}"),
        Paragraph(
            "Open your personal link, choose keep or revoke for each engineer and send your answer. A revocation "
            "takes effect at once in your IAM. The link is yours alone and stops working on {{ due_at | when }}."
        ),
        Facts((("Your link", "{{ link }}"), ("Please answer by", "{{ due_at | when }}"))),
        Paragraph("For engineers you have not answered for by then, {{ default_rule }}."),
    ),
    EmailKind.CERTIFICATION_ESCALATION: _t(
        "{{ client }}: access certification round {{ round }} was not answered",
        Paragraph(
            "{{ iam_owner }} did not answer access certification round {{ round }} of contract {{ contract_id }} "
            "by {{ due_at | when }}. As the contract's rule says, these engineers keep their access:"
        ),
        Listing("{{ engineers }}"),
        Paragraph("Please follow up with the client, who can still revoke access with the firm's help."),
    ),
}

_LATE_SESSION_FACTS = frozenset({"where", "attendees", "location", "join_url", "invitees"})
OPTIONAL_FACTS: dict[EmailKind, frozenset[str]] = {
    EmailKind.NDA_REQUEST: frozenset({"firm_lead", "firm_lead_email"}),
    EmailKind.NDA_REMINDER: frozenset({"firm_lead", "firm_lead_email"}),
    EmailKind.SESSION_INVITE: _LATE_SESSION_FACTS,
    EmailKind.SESSION_RESCHEDULED: _LATE_SESSION_FACTS,
    EmailKind.SESSION_CANCELLED: _LATE_SESSION_FACTS | {"reason"},
}
"""Facts a template uses when given (``is defined``) and does without otherwise: facts added after
emails of the kind were already queued in running engagements, which must still render."""

CALENDAR_FACTS = ("session_uid", "session_sequence", "starts_at", "duration_minutes", "title")
"""The facts a session email's calendar invitation is built from."""


def _sources(kind: EmailKind) -> list[str]:
    template = TEMPLATES[kind]
    sources = [template.subject]
    for block in template.blocks:
        if isinstance(block, Facts):
            sources += [value for _, value in block.rows]
        else:
            sources.append(block.text)
    return sources


def required_facts(kind: EmailKind) -> frozenset[str]:
    """Every fact the workflow must hand over for this kind (the calendar's facts included)."""
    names: set[str] = set()
    for source in _sources(kind):
        names |= meta.find_undeclared_variables(_env.parse(source))
    if kind in SESSION_KINDS:
        names |= set(CALENDAR_FACTS)
    return frozenset(names - RESERVED_NAMES - OPTIONAL_FACTS.get(kind, frozenset()))
