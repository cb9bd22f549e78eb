"""Every email of the lifecycle: who receives it, what it says, and where it stands once sent.

All pure: the workflow chooses the recipients from the spec, the email activity renders the text
from the facts the workflow hands it. A missing fact is an error, never a blank.

Each email is one template rendered twice from the same facts: a plain-text part and an HTML part.
A template is a subject and a few blocks (paragraphs, a table of facts, a list); the renderer gives
each block its plain-text and its HTML shape, and escapes every fact for HTML. Dates arrive as
ISO 8601 UTC strings and are shown in the recipient's time zone by the ``when`` filter.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, StrictUndefined, Template, meta, pass_context
from jinja2.runtime import Context
from pydantic import BaseModel, ConfigDict

from domain.calendar import CalendarMethod, Party, SessionEvent, calendar_invitation, mime_type
from domain.spec import Contact, EngagementSpec, EngagementType, EngineerSpec


class EmailKind(StrEnum):
    NDA_REQUEST = "nda_request"
    NDA_REMINDER = "nda_reminder"
    NDA_RECORDED = "nda_recorded"
    CHECK_CONSENT_REQUEST = "check_consent_request"
    CHECK_CONSENT_REMINDER = "check_consent_reminder"
    CHECK_RESULT = "check_result"
    ACCESS_GRANTED = "access_granted"
    ENGINEER_ADDED = "engineer_added"
    ENGINEER_REMOVED = "engineer_removed"
    ROLE_CHANGED = "role_changed"
    ACCESS_REVIEW = "access_review"
    NOTICE_RECEIVED = "notice_received"
    END_DATE_MOVED = "end_date_moved"
    HANDOVER_REMINDER = "handover_reminder"
    SESSION_INVITE = "session_invite"
    SESSION_RESCHEDULED = "session_rescheduled"
    SESSION_CANCELLED = "session_cancelled"
    REVOCATION_REPORT = "revocation_report"
    EMERGENCY_REVOCATION = "emergency_revocation"
    TRANSITION_OPEN = "transition_open"
    TRANSITION_CLOSING = "transition_closing"
    CLOSING_REPORT = "closing_report"
    CANCELLATION = "cancellation"


ENGINEER_ADDRESSED = frozenset({EmailKind.CHECK_CONSENT_REQUEST, EmailKind.CHECK_CONSENT_REMINDER})
"""Kinds sent to one engineer by name rather than to contacts chosen from the spec."""

SESSION_KINDS: dict[EmailKind, CalendarMethod] = {
    EmailKind.SESSION_INVITE: CalendarMethod.REQUEST,
    EmailKind.SESSION_RESCHEDULED: CalendarMethod.REQUEST,
    EmailKind.SESSION_CANCELLED: CalendarMethod.CANCEL,
}
"""Kinds that carry a calendar invitation, and its iTIP method."""


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    email: str
    timezone: str | None = None
    """IANA time zone the recipient reads dates in (UTC when unset)."""


def _r(contact: Contact | EngineerSpec) -> Recipient:
    return Recipient(name=contact.name, email=str(contact.email), timezone=contact.timezone)


def recipients(kind: EmailKind, spec: EngagementSpec) -> list[Recipient]:
    """Who receives an email of this kind (the engineer-addressed kinds are sent by name instead).

    In managed outsourcing the firm manages the engineers, so people matters go to the firm's lead
    and the client hears the outcome; in staff augmentation the client's engagement manager
    manages the engineers and receives them directly.
    """
    c = spec.client.contacts
    managers = (
        [_r(spec.firm_lead), _r(c.engagement_manager)]
        if spec.engagement_type is EngagementType.MANAGED_OUTSOURCING
        else [_r(c.engagement_manager)]
    )
    sessions = [_r(c.incoming_team_lead), _r(c.engagement_manager), _r(spec.firm_lead)]
    transition = [_r(c.engagement_manager), _r(c.incoming_team_lead)]
    table: dict[EmailKind, list[Recipient]] = {
        EmailKind.NDA_REQUEST: [_r(c.signatory)],
        EmailKind.NDA_REMINDER: [_r(c.signatory)],
        EmailKind.NDA_RECORDED: [_r(c.signatory), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.CHECK_RESULT: [*managers, _r(c.iam_owner)],
        EmailKind.ACCESS_GRANTED: [_r(c.iam_owner), *managers],
        EmailKind.ENGINEER_ADDED: [*managers, _r(c.iam_owner)],
        EmailKind.ENGINEER_REMOVED: [*managers, _r(c.iam_owner)],
        EmailKind.ROLE_CHANGED: [*managers, _r(c.iam_owner)],
        EmailKind.ACCESS_REVIEW: [_r(c.iam_owner), _r(spec.firm_lead)],
        EmailKind.NOTICE_RECEIVED: [_r(c.engagement_manager), _r(c.signatory), _r(spec.firm_lead)],
        EmailKind.END_DATE_MOVED: [_r(c.engagement_manager), _r(c.iam_owner), _r(spec.firm_lead)],
        EmailKind.HANDOVER_REMINDER: [_r(spec.firm_lead), _r(c.engagement_manager)],
        EmailKind.SESSION_INVITE: sessions,
        EmailKind.SESSION_RESCHEDULED: sessions,
        EmailKind.SESSION_CANCELLED: sessions,
        EmailKind.REVOCATION_REPORT: [_r(c.iam_owner), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.EMERGENCY_REVOCATION: [_r(c.iam_owner), _r(c.engagement_manager), _r(spec.firm_lead)],
        EmailKind.TRANSITION_OPEN: transition,
        EmailKind.TRANSITION_CLOSING: transition,
        EmailKind.CLOSING_REPORT: [_r(c.engagement_manager), _r(c.signatory), _r(spec.firm_lead)],
        EmailKind.CANCELLATION: [_r(c.signatory), _r(spec.firm_lead)],
    }
    chosen = table.get(kind)
    if chosen is None:
        raise ValueError(f"{kind} is addressed to an engineer, not chosen from the spec")
    unique: dict[str, Recipient] = {}
    for r in chosen:
        unique.setdefault(r.email.lower(), r)
    return list(unique.values())


def message_key(engagement_id: str, step: str, recipient: str, occurrence: int) -> str:
    """One key per (engagement, step, recipient, occurrence); it carries no personal data."""
    raw = f"{engagement_id}\x1f{step}\x1f{recipient.lower()}\x1f{occurrence}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


# ---------------------------------------------------------------- dates in the recipient's terms

_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_moment(value: object) -> datetime | None:
    """An ISO 8601 date-time (a time zone or UTC) as an aware datetime; None for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not _ISO_MOMENT.match(value.strip()):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(value: object, timezone: str | None) -> str:
    """``2027-03-01T17:00:00+00:00`` read in Europe/Paris is ``Mon 1 Mar 2027, 18:00 CET``.

    Anything that is not an ISO date-time ("not set", an already formatted date) is shown as it is.
    """
    moment = parse_moment(value)
    if moment is None:
        return str(value)
    local = moment.astimezone(zone(timezone))
    return (
        f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local:%H:%M} {local.tzname() or 'UTC'}"
    )


@pass_context
def _when(context: Context, value: object) -> str:
    timezone = context.get("recipient_timezone")
    return local_time(value, timezone if isinstance(timezone, str) else None)


_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_env.filters["when"] = _when

RESERVED_NAMES = frozenset({"name", "recipient_timezone"})
"""Set by the renderer from the recipient, never taken from the facts."""


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _env.from_string(source)


# ---------------------------------------------------------------- the templates


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
    (("Session", "{{ title }}"), ("When", "{{ starts_at | when }}"), ("Duration", "{{ duration_minutes }} minutes"))
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
        Paragraph("Without the signed NDA the engagement is cancelled on {{ deadline | when }}."),
    ),
    EmailKind.NDA_REMINDER: _t(
        "Reminder {{ reminder }}: the NDA for contract {{ contract_id }} awaits signature",
        Paragraph(
            "The NDA ({{ nda_reference }}) for contract {{ contract_id }} is not signed yet. "
            "This is reminder {{ reminder }}."
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
        Paragraph("Please give your consent to the screening provider."),
    ),
    EmailKind.CHECK_CONSENT_REMINDER: _t(
        "Reminder: background check consent ({{ client }})",
        Paragraph(
            "We still need your consent for the background check ({{ checks }}) before production access on "
            "the {{ client }} engagement can be granted."
        ),
    ),
    EmailKind.CHECK_RESULT: _t(
        "Background check {{ outcome }}: {{ engineer }}",
        Paragraph("The background check of {{ engineer }} ({{ checks }}) is {{ outcome }}."),
        Paragraph("{{ consequence }}"),
    ),
    EmailKind.ACCESS_GRANTED: _t(
        "{{ client }}: engineers onboarded and access granted",
        Paragraph(
            "Onboarding for contract {{ contract_id }} is complete. Access granted, exactly the entitlements "
            "of each role:"
        ),
        Listing("{{ roster }}"),
    ),
    EmailKind.ENGINEER_ADDED: _t(
        "{{ client }}: {{ engineer }} joins the engagement",
        Paragraph(
            "{{ engineer }} joins the engagement as {{ role }}. Access follows the role's policy{{ production_note }}."
        ),
    ),
    EmailKind.ENGINEER_REMOVED: _t(
        "{{ client }}: {{ engineer }} leaves the engagement, access revoked",
        Paragraph(
            "{{ engineer }} left the engagement. Every grant was revoked at once and the identity deactivated; "
            "read back from your IAM: {{ evidence }}."
        ),
    ),
    EmailKind.ROLE_CHANGED: _t(
        "{{ client }}: {{ engineer }} is now {{ role }}",
        Paragraph(
            "{{ engineer }} changed role to {{ role }}. Their grants now follow that role exactly: {{ groups }}."
        ),
    ),
    EmailKind.ACCESS_REVIEW: _t(
        "{{ client }}: access review {{ review_result }}",
        Paragraph(
            "The access review of {{ reviewed_at | when }} compared your IAM with the policy: {{ review_result }}."
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
        Paragraph("The calendar invitation is attached."),
    ),
    EmailKind.SESSION_RESCHEDULED: _t(
        "Handover session moved: {{ title }} ({{ starts_at | when }})",
        Paragraph(
            'The handover session "{{ title }}" with the {{ client }} incoming team moved to {{ starts_at | when }}.'
        ),
        _SESSION_FACTS,
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
        Paragraph("At the end date ({{ revoked_at | when }}) every grant was revoked. Read back from your IAM:"),
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
    EmailKind.TRANSITION_OPEN: _t(
        "{{ client }}: the transition window is open until {{ transition_ends_at | when }}",
        Paragraph(
            "The transition window is open until {{ transition_ends_at | when }}. Send your questions; they are "
            "tracked and answered. No system access remains."
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
}

OPTIONAL_FACTS: dict[EmailKind, frozenset[str]] = {EmailKind.SESSION_CANCELLED: frozenset({"reason"})}
"""Facts a template uses when given (``is defined``) and does without otherwise."""

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


# ---------------------------------------------------------------- rendering


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)
    filename: str
    mime_type: str
    """Full MIME type with parameters, e.g. ``text/calendar; method=REQUEST``."""
    content: bytes


class RenderedEmail(BaseModel):
    subject: str
    text: str
    html: str
    attachments: list[Attachment] = []


_FONT = "font-family:Arial,Helvetica,sans-serif;color:#1f2933;"


def _html_lines(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.split("\n"))


def _listing_html(text: str) -> str:
    """Bulleted lines become one list; other lines stay paragraphs, in their order."""
    parts: list[str] = []
    items: list[str] = []
    for line in text.split("\n"):
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            parts.append(f'<ul style="margin:0 0 16px 0;padding-left:24px;">{"".join(items)}</ul>')
            items = []
        if line.strip():
            parts.append(f'<p style="margin:0 0 16px 0;">{html.escape(line)}</p>')
    if items:
        parts.append(f'<ul style="margin:0 0 16px 0;padding-left:24px;">{"".join(items)}</ul>')
    return "".join(parts)


def _render_block(block: Block, context: dict[str, Any]) -> tuple[str, str]:
    """The block as plain text and as HTML, from one rendering of its templates."""
    if isinstance(block, Paragraph):
        text = _compiled(block.text).render(context)
        return text, f'<p style="margin:0 0 16px 0;">{_html_lines(text)}</p>'
    if isinstance(block, Listing):
        text = _compiled(block.text).render(context)
        return text, _listing_html(text)
    rows = [(label, _compiled(value).render(context)) for label, value in block.rows]
    text = "\n".join(f"{label}: {value}" for label, value in rows)
    cells = "".join(
        f'<tr><th scope="row" style="text-align:left;vertical-align:top;padding:4px 16px 4px 0;'
        f'font-weight:bold;">{html.escape(label)}</th>'
        f'<td style="vertical-align:top;padding:4px 0;">{_html_lines(value)}</td></tr>'
        for label, value in rows
    )
    return text, f'<table style="border-collapse:collapse;margin:0 0 16px 0;{_FONT}"><tbody>{cells}</tbody></table>'


def _zone_label(timezone: str | None) -> str:
    return zone(timezone).key


def _layout(subject: str, body: str, footer: str) -> str:
    """A simple, accessible email layout: one readable column, real headings, a language, a title."""
    title = html.escape(subject)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n"
        '<body style="margin:0;padding:0;background-color:#f3f4f6;">\n'
        f'<div role="article" aria-roledescription="email" aria-label="{title}" lang="en" '
        f'style="padding:24px 12px;{_FONT}">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="max-width:600px;margin:0 auto;background-color:#ffffff;border-radius:6px;">\n'
        f'<tr><td style="padding:24px;font-size:16px;line-height:1.5;{_FONT}">\n'
        f'<h1 style="font-size:20px;line-height:1.3;margin:0 0 16px 0;">{title}</h1>\n'
        f"{body}\n"
        "</td></tr>\n"
        f'<tr><td style="padding:16px 24px;border-top:1px solid #e5e7eb;font-size:13px;color:#4b5563;">'
        f"{html.escape(footer)}</td></tr>\n"
        "</table>\n</div>\n</body>\n</html>\n"
    )


def render(
    kind: EmailKind,
    facts: dict[str, Any],
    recipient: Recipient,
    *,
    organizer: Recipient | None = None,
    stamped_at: datetime | None = None,
    default_session_uid: str | None = None,
) -> RenderedEmail:
    """Render one email for one recipient; raises jinja2's UndefinedError when a fact is missing.

    Session kinds also carry the calendar invitation, which needs the ``organizer`` (the sender) and
    ``stamped_at`` (its DTSTAMP). ``default_session_uid`` stands in for the ``session_uid`` fact, which
    invitations queued before that fact existed do not carry.
    """
    context = {**facts, "name": recipient.name, "recipient_timezone": recipient.timezone}
    template = TEMPLATES[kind]
    subject = " ".join(_compiled(template.subject).render(context).split())
    greeting = Paragraph("Dear {{ name }},")
    rendered = [_render_block(block, context) for block in (greeting, *template.blocks)]
    parts = [(text, markup) for text, markup in rendered if text.strip()]  # a block with only optional facts
    engagement = f"the {facts['client']} engagement" if facts.get("client") else "your engagement"
    footer = (
        f"This message was sent automatically about {engagement}. "
        f"Times are in the {_zone_label(recipient.timezone)} time zone."
    )
    text = "\n\n".join(t for t, _ in parts) + "\n\n-- \n" + footer
    body = "\n".join(h for _, h in parts)
    attachments: list[Attachment] = []
    if kind in SESSION_KINDS:
        invitation = _invitation(kind, facts, recipient, organizer, stamped_at, default_session_uid)
        if invitation is not None:
            attachments.append(invitation)
    return RenderedEmail(subject=subject, text=text, html=_layout(subject, body, footer), attachments=attachments)


_LEGACY_FORMAT = "%Y-%m-%d %H:%M UTC"
"""How workflows formatted dates before they passed ISO 8601 (kept readable for invitations in flight)."""


def _instant(value: object) -> datetime | None:
    moment = parse_moment(value)
    if moment is None and isinstance(value, str):
        try:
            moment = datetime.strptime(value, _LEGACY_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            return None
    return moment


def _invitation(
    kind: EmailKind,
    facts: dict[str, Any],
    recipient: Recipient,
    organizer: Recipient | None,
    stamped_at: datetime | None,
    default_uid: str | None,
) -> Attachment | None:
    if organizer is None or stamped_at is None:
        raise ValueError(f"a {kind.value} email carries a calendar invitation: it needs the organizer and a stamp")
    method = SESSION_KINDS[kind]
    uid = facts.get("session_uid") or default_uid
    starts_at = _instant(facts["starts_at"])
    if uid is None or starts_at is None:
        return None  # an invitation queued before these facts existed: the email alone still informs
    event = SessionEvent(
        uid=str(uid),
        sequence=int(facts.get("session_sequence", 0)),
        starts_at=starts_at,
        duration=timedelta(minutes=int(facts["duration_minutes"])),
        summary=str(facts["title"]),
        organizer=Party(organizer.name, organizer.email),
        attendee=Party(recipient.name, recipient.email),
        description=f"Handover session of the {facts['client']} engagement." if "client" in facts else None,
    )
    filename = "cancel.ics" if method is CalendarMethod.CANCEL else "invite.ics"
    return Attachment(
        filename=filename, mime_type=mime_type(method), content=calendar_invitation(event, method, stamped_at)
    )


# ---------------------------------------------------------------- representative facts for a preview


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def sample_facts(kind: EmailKind, spec: EngagementSpec) -> dict[str, Any]:
    """Representative facts for one email of this kind, derived from the spec (for previews and tests).

    Dates follow the spec's own durations from its start date, as ISO 8601 UTC strings, the way the
    workflow hands them over.
    """
    signed = datetime.combine(spec.start_date, time(9, 0), tzinfo=UTC)
    notice = signed + timedelta(days=180)
    end = notice + spec.notice_period
    transition_end = end + spec.transition_window
    session_at = end - spec.handover_reminder_lead - timedelta(days=1)
    while session_at.weekday() >= 5:  # a working day, like a real session
        session_at -= timedelta(days=1)
    engineer = next((e for e in spec.engineers if e.production_access), spec.engineers[0])
    policy = spec.roles[engineer.role]
    base: dict[str, Any] = {
        "client": spec.client.name,
        "contract_id": spec.contract_id,
        "end_date": _iso(end),
        "transition_ends_at": _iso(transition_end),
    }
    nda = {
        **base,
        "nda_reference": spec.agreement.nda_reference,
        "ip_assignment_clause": spec.agreement.ip_assignment_clause,
        "deadline": _iso(signed + spec.nda_deadline),
    }
    checks = "credentials verification, criminal record"
    person = {**base, "engineer": engineer.name, "role": engineer.role}
    session = {
        **base,
        "title": "Architecture walkthrough",
        "starts_at": _iso(session_at),
        "duration_minutes": 60,
        "session_uid": f"{spec.contract_id}.arch-1@engagements",
    }
    roster = "\n".join(
        f"- {e.name} <{e.email}>, {e.role}: {', '.join(spec.roles[e.role].non_production) or 'no groups'}"
        for e in spec.engineers
    )
    evidence = "\n".join(
        f"- {e.email}: removed {', '.join(spec.roles[e.role].non_production + spec.roles[e.role].production)}; "
        "now holds no group; identity inactive"
        for e in spec.engineers
    )
    documents = "architecture documentation, system runbooks, infrastructure documentation, "
    documents += "vendor contract inventory, decision logs"
    facts: dict[EmailKind, dict[str, Any]] = {
        EmailKind.NDA_REQUEST: nda,
        EmailKind.NDA_REMINDER: {**nda, "reminder": 1},
        EmailKind.NDA_RECORDED: {
            **base,
            "signed_by": spec.client.contacts.signatory.name,
            "signed_at": _iso(signed + timedelta(days=2)),
            "engineer_count": len(spec.engineers),
        },
        EmailKind.CHECK_CONSENT_REQUEST: {
            "client": spec.client.name,
            "jurisdiction": engineer.jurisdiction,
            "checks": checks,
        },
        EmailKind.CHECK_CONSENT_REMINDER: {
            "client": spec.client.name,
            "jurisdiction": engineer.jurisdiction,
            "checks": checks,
        },
        EmailKind.CHECK_RESULT: {
            **person,
            "outcome": "cleared",
            "checks": checks,
            "consequence": "Production access has been granted: " + (", ".join(policy.production) or "none"),
        },
        EmailKind.ACCESS_GRANTED: {**base, "roster": roster},
        EmailKind.ENGINEER_ADDED: {
            **person,
            "production_note": " (production access after a cleared background check)"
            if engineer.production_access
            else "",
        },
        EmailKind.ENGINEER_REMOVED: {**person, "evidence": "identity active=False, groups=none"},
        EmailKind.ROLE_CHANGED: {**person, "groups": ", ".join(policy.non_production + policy.production) or "none"},
        EmailKind.ACCESS_REVIEW: {
            **base,
            "reviewed_at": _iso(signed + timedelta(days=30)),
            "review_result": "1 correction(s)",
            "changes": f"- {engineer.email}: removed hand-added-group",
        },
        EmailKind.NOTICE_RECEIVED: {**base, "given_by": "client", "notice_date": _iso(notice), "documents": documents},
        EmailKind.END_DATE_MOVED: {
            **base,
            "previous_end_date": _iso(end - timedelta(days=14)),
            "reason_note": " (the incoming team starts later)",
        },
        EmailKind.HANDOVER_REMINDER: {
            **base,
            "missing_documents": "vendor contract inventory, decision logs",
            "open_sessions": "Architecture walkthrough",
        },
        EmailKind.SESSION_INVITE: {**session, "session_sequence": 0},
        EmailKind.SESSION_RESCHEDULED: {**session, "session_sequence": 1},
        EmailKind.SESSION_CANCELLED: {**session, "session_sequence": 2, "reason": "the incoming team is not ready"},
        EmailKind.REVOCATION_REPORT: {**base, "revoked_at": _iso(end), "evidence": evidence},
        EmailKind.EMERGENCY_REVOCATION: {
            **base,
            "revoked_at": _iso(notice + timedelta(days=3, hours=2)),
            "reason": "suspected credential compromise reported by the client's security team",
            "engineers": evidence,
        },
        EmailKind.TRANSITION_OPEN: base,
        EmailKind.TRANSITION_CLOSING: {**base, "open_questions": 2},
        EmailKind.CLOSING_REPORT: {
            **base,
            "documents": f"5 of 5 ({documents})",
            "sessions": "3",
            "questions": "5 of 5",
            "sweep": f"{len(spec.engineers)} identities read back: no group membership, no active identity",
        },
        EmailKind.CANCELLATION: {**base, "reason": "the contract was withdrawn before the NDA was signed"},
    }
    return facts[kind]


def sample_recipient(kind: EmailKind, spec: EngagementSpec) -> Recipient:
    """Who a preview is addressed to by default: the first recipient of the kind."""
    if kind in ENGINEER_ADDRESSED:
        return _r(next((e for e in spec.engineers if e.production_access), spec.engineers[0]))
    return recipients(kind, spec)[0]


def people(spec: EngagementSpec) -> list[Recipient]:
    """Everyone the spec names who may receive an email: contacts, the firm's lead, the engineers."""
    c = spec.client.contacts
    everyone = [c.signatory, c.engagement_manager, c.iam_owner, c.incoming_team_lead, spec.firm_lead]
    return [_r(p) for p in everyone] + [_r(e) for e in spec.engineers]


# ---------------------------------------------------------------- where a message stands


class MessageState(StrEnum):
    """An outbox row's state. Sending moves forward only; delivery events only move it further on."""

    PENDING = "pending"
    """Recorded, not handed to the provider yet (or the provider refused it for now: 429, 5xx)."""
    SENDING = "sending"
    """About to be handed over; a retry that finds this does not know whether it was."""
    UNKNOWN = "unknown"
    """Handed over with no answer (timeout, reset, a worker that died): reconciled from events."""
    FAILED = "failed"
    """Refused for good by the provider (4xx): recorded with its error, an admin alerted."""
    SENT = "sent"
    """Accepted by the provider (202)."""
    PROCESSED = "processed"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    BLOCKED = "blocked"


HANDED_OVER = frozenset(
    {
        MessageState.SENT,
        MessageState.PROCESSED,
        MessageState.DEFERRED,
        MessageState.DELIVERED,
        MessageState.BOUNCED,
        MessageState.DROPPED,
        MessageState.BLOCKED,
    }
)
"""The provider has the message: it is never sent again."""

_RANK: dict[MessageState, int] = {
    MessageState.PENDING: 0,
    MessageState.SENDING: 1,
    MessageState.UNKNOWN: 1,
    MessageState.FAILED: 2,
    MessageState.SENT: 2,
    MessageState.PROCESSED: 3,
    MessageState.DEFERRED: 4,
    MessageState.DELIVERED: 5,
    # Terminal. A bounce may follow "delivered" (an asynchronous bounce); nothing follows these.
    MessageState.BOUNCED: 6,
    MessageState.DROPPED: 6,
    MessageState.BLOCKED: 6,
}

PROBLEM_STATES = frozenset({MessageState.BOUNCED, MessageState.DROPPED, MessageState.BLOCKED})


def event_state(event: str, bounce_type: str | None = None) -> MessageState | None:
    """The state a SendGrid delivery event stands for; None for engagement events (open, click, ...)."""
    if event == "bounce":
        return MessageState.BLOCKED if bounce_type == "blocked" else MessageState.BOUNCED
    return {
        "processed": MessageState.PROCESSED,
        "deferred": MessageState.DEFERRED,
        "delivered": MessageState.DELIVERED,
        "dropped": MessageState.DROPPED,
    }.get(event)


def states_before(target: MessageState) -> frozenset[MessageState]:
    """The states an event's ``target`` state may replace: only those strictly behind it."""
    return frozenset(s for s, rank in _RANK.items() if rank < _RANK[target])


def furthest(states: list[MessageState]) -> MessageState | None:
    return max(states, key=lambda s: _RANK[s], default=None)
