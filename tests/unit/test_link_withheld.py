"""The outbox's record of an access certification email keeps everything but the signed link."""

from __future__ import annotations

from html import escape

from activities.email import LINK_WITHHELD, EmailRequest, _for_the_record
from domain.email_kinds import EmailKind
from emails.render import RenderedEmail

LINK = "https://cert.firm.example/a&b/c/eyJyIjoxfQ.c2ln"


def request(kind: EmailKind) -> EmailRequest:
    return EmailRequest(engagement_id="e", kind=kind, step="s", occurrence=1, recipients=[], facts={"link": LINK})


def test_the_link_is_withheld_from_both_bodies_however_the_html_escapes_it() -> None:
    rendered = RenderedEmail(
        subject="Certify",
        text=f"Answer here: {LINK}\nThanks",
        html=f'<a href="{escape(LINK)}">{escape(LINK)}</a> <p>{LINK}</p>',
    )
    text, html = _for_the_record(request(EmailKind.ACCESS_CERTIFICATION), rendered)
    assert "eyJyIjoxfQ" not in text + html
    assert text == f"Answer here: {LINK_WITHHELD}\nThanks"
    assert html.count(escape(LINK_WITHHELD)) == 3


def test_other_emails_are_kept_as_sent() -> None:
    rendered = RenderedEmail(subject="S", text=f"see {LINK}", html=f"<p>{escape(LINK)}</p>")
    assert _for_the_record(request(EmailKind.NDA_REQUEST), rendered) == (rendered.text, rendered.html)
