"""Rendering one email for one recipient: a plain-text part, an accessible HTML part, and for
handover sessions the calendar invitation. A missing fact is an error, never a blank."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.email_kinds import EmailKind, Recipient
from emails.calendar import CalendarMethod, Party, SessionEvent, calendar_invitation, mime_type
from emails.dates import parse_moment, zone
from emails.templates import SESSION_KINDS, TEMPLATES, Block, Listing, Paragraph, compiled


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
        text = compiled(block.text).render(context)
        return text, f'<p style="margin:0 0 16px 0;">{_html_lines(text)}</p>'
    if isinstance(block, Listing):
        text = compiled(block.text).render(context)
        return text, _listing_html(text)
    rendered = [(label, compiled(value).render(context)) for label, value in block.rows]
    rows = [(label, value) for label, value in rendered if value.strip()]  # an optional fact not given
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
    subject = " ".join(compiled(template.subject).render(context).split())
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
        other_attendees=tuple(Party(str(i["name"]), str(i["email"])) for i in facts.get("invitees") or []),
        location=facts.get("location") or None,
        url=facts.get("join_url") or None,
    )
    filename = "cancel.ics" if method is CalendarMethod.CANCEL else "invite.ics"
    return Attachment(
        filename=filename, mime_type=mime_type(method), content=calendar_invitation(event, method, stamped_at)
    )
