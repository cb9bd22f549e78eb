"""``starter.py preview-email SPEC KIND``: any email of a spec, rendered from sample facts, never sent."""

from __future__ import annotations

import asyncio
import email.policy
import sys
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
import yaml

from domain.email_kinds import EmailKind, Recipient
from domain.spec import load_spec
from emails.preview import UnknownRecipient, preview_email
from tests.sample_spec import spec_data

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "engagement.yaml"
SENDER = Recipient(name="Engagement Office", email="eo@firm.example")


def spec_file(tmp_path: Path, **changes: object) -> Path:
    data = spec_data()
    data.update(changes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_prints_an_email_and_refuses_an_unknown_kind() -> None:
    (ok, out, _), (refused, _, err) = await asyncio.gather(
        run_cli("preview-email", str(SAMPLE), "session_rescheduled"),
        run_cli("preview-email", str(SAMPLE), "no_such_kind"),
    )

    assert ok == 0
    assert out.startswith(
        "From: Engagement Office <engagements@firm.example>\nTo: Lee Incoming <lee.incoming@acme.example>"
    )
    assert "Subject: Handover session moved: Architecture walkthrough" in out
    assert "Attachment: invite.ics (text/calendar; method=REQUEST" in out
    assert "Dear Lee Incoming," in out
    assert refused == 2
    assert "invalid choice: 'no_such_kind'" in err


@pytest.mark.parametrize("engagement_type", ["managed_outsourcing", "staff_augmentation"])
def test_every_kind_previews_for_a_spec(tmp_path: Path, engagement_type: str) -> None:
    spec = load_spec(spec_file(tmp_path, engagement_type=engagement_type))
    for kind in EmailKind:
        for output in ("text", "html", "eml"):
            assert preview_email(spec, kind, None, output, SENDER)


def test_preview_for_a_chosen_recipient_in_their_time_zone(tmp_path: Path) -> None:
    data = spec_data()
    data["client"]["contacts"]["engagement_manager"]["timezone"] = "America/New_York"
    spec = load_spec(spec_file(tmp_path, client=data["client"]))

    text = preview_email(spec, EmailKind.NOTICE_RECEIVED, "ERIN@acme.example", "text", SENDER)

    assert "To: Erin Manager <erin@acme.example>" in text
    assert "Times are in the America/New_York time zone." in text
    assert " EST" in text or " EDT" in text


def test_preview_as_html_and_as_eml(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    html = preview_email(spec, EmailKind.SESSION_CANCELLED, None, "html", SENDER)
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html

    eml = preview_email(spec, EmailKind.SESSION_CANCELLED, None, "eml", SENDER)
    parsed = BytesParser(policy=email.policy.default).parsebytes(eml.encode())
    assert isinstance(parsed, EmailMessage)
    assert parsed["From"] == "Engagement Office <eo@firm.example>"
    [invitation] = list(parsed.iter_attachments())
    assert invitation.get_content_type() == "text/calendar" and invitation.get_param("method") == "CANCEL"


def test_preview_refuses_someone_outside_the_spec(tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path))
    with pytest.raises(UnknownRecipient, match="not a contact or engineer"):
        preview_email(spec, EmailKind.NDA_REQUEST, "stranger@example.com", "text", SENDER)
