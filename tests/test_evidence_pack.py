"""The auditors' commands against the real PostgreSQL: an evidence pack from the records, alerts
listed and acknowledged (audited), and the audit chain verified."""

from __future__ import annotations

import csv
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.outbox import OutboxStore
from cli.args import parser
from cli.errors import CliError
from cli.run import run
from domain.evidence import CertificationEvidence
from domain.spec import parse_spec
from domain.state import EngineerState
from domain.vocabulary import CheckStatus
from tests.sample_spec import spec_data

T0 = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


async def seed(store: EngagementStore) -> tuple[str, str]:
    spec = parse_spec(spec_data())
    engagement = f"engagement-{spec.contract_id}"
    await store.record_engagement(engagement, spec, T0)
    alice = next(e for e in spec.engineers if e.email == "alice@firm.example")
    await store.save_engineer(engagement, EngineerState(spec=alice, check=CheckStatus.CLEARED), T0)
    granted = {"read_back_at": (T0 + timedelta(seconds=5)).isoformat(), "groups": ["repo-write", "prod-readonly"]}
    await store.record_access_change(
        engagement_id=engagement,
        engineer_email=alice.email,
        granted=["repo-write", "prod-readonly"],
        revoked=[],
        actor="engagement-workflow",
        at=T0,
        evidence=granted,
    )
    removed_at = T0 + timedelta(days=30)
    await store.append_audit(
        engagement_id=engagement,
        event_key=f"{engagement}/removed",
        at=removed_at,
        actor='=HYPERLINK("http://evil.example")',
        action="engineer_removed",
        details={"engineer": alice.email},
    )
    late = {"read_back_at": (removed_at + timedelta(minutes=20)).isoformat(), "groups": []}
    await store.record_access_change(
        engagement_id=engagement,
        engineer_email=alice.email,
        granted=[],
        revoked=["repo-write", "prod-readonly"],
        actor="fran",
        at=removed_at,
        evidence=late,
    )
    await OutboxStore(store.engine).claim_message(
        {
            "message_key": uuid.uuid4().hex[:40],
            "engagement_id": engagement,
            "step": "nda_request",
            "kind": "nda_request",
            "recipient": "sam@acme.example",
            "occurrence": 1,
            "subject": "please sign",
            "body_text": "t",
            "body_html": "h",
        }
    )
    key = f"test:{uuid.uuid4().hex}"
    await AlertStore(store.engine).raise_alert(
        engagement_id=engagement,
        alert_key=key,
        at=removed_at,
        kind="revocation_unconfirmed",
        message="<script>x</script>",
    )
    return engagement, spec.contract_id


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The CLI in this process (starter.main would start a second event loop)."""
    try:
        status = await run(parser().parse_args(["--actor", "auditor-test", *argv]))
    except CliError as error:
        print(f"error: {error}")
        status = 1
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.fixture(autouse=True)
def _database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


async def test_the_pack_reports_grants_revocations_and_the_chain(
    store: EngagementStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, contract = await seed(store)
    status, out = await cli(capsys, "evidence", contract, "--out", str(tmp_path / "pack"))
    assert status == 0, out
    pack = json.loads((tmp_path / "pack" / "pack.json").read_text())
    assert pack["chain"]["intact"] and pack["chain"]["entries"] >= 1
    grants = {g["group"]: g for g in pack["grants"]}
    assert "production group" in grants["prod-readonly"]["basis"] and grants["prod-readonly"]["check"] == "cleared"
    assert "non-production" in grants["repo-write"]["basis"]
    [revocation, _] = pack["revocations"]
    assert revocation["seconds_to_revoke"] == 1200 and revocation["within_sla"] is False
    assert "engineer removed" in revocation["trigger"]
    report = (tmp_path / "pack" / "report.html").read_text()
    assert "<script>" not in report and "&lt;script&gt;x&lt;/script&gt;" in report
    assert "hash chain intact" in report
    with (tmp_path / "pack" / "audit_log.csv").open() as handle:
        actors = [row["actor"] for row in csv.DictReader(handle)]
    assert all(not a.startswith("=") for a in actors) and "'=HYPERLINK" in actors[0]
    assert pack["certifications"] == []  # an empty table still names its columns
    with (tmp_path / "pack" / "certifications.csv").open() as handle:
        assert list(csv.reader(handle)) == [list(CertificationEvidence.model_fields)]


async def test_out_must_be_a_new_or_empty_folder(
    store: EngagementStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, contract = await seed(store)
    a_file = tmp_path / "report.txt"
    a_file.write_text("keep me")
    status, out = await cli(capsys, "evidence", contract, "--out", str(a_file))
    assert status == 1 and "is a file" in out and a_file.read_text() == "keep me"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    status, out = await cli(capsys, "evidence", contract, "--out", str(tmp_path / "full"))
    assert status == 1 and "not empty" in out


async def test_leavers_since_a_date_across_engagements(
    store: EngagementStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engagement, _ = await seed(store)
    status, out = await cli(capsys, "evidence", "--leavers-since", "2027-02-01", "--out", str(tmp_path / "leavers"))
    assert status == 0, out
    assert (tmp_path / "leavers" / engagement / "report.html").exists()
    assert "alice@firm.example" in (tmp_path / "leavers" / "leavers.html").read_text()


async def test_alerts_are_listed_and_acknowledged_once_with_an_audit_entry(
    store: EngagementStore, capsys: pytest.CaptureFixture[str]
) -> None:
    engagement, contract = await seed(store)
    [alert] = await AlertStore(store.engine).open_alerts(engagement)
    status, out = await cli(capsys, "alerts", contract)
    assert status == 0 and str(alert.alert_id) in out and "revocation_unconfirmed" in out
    status, out = await cli(capsys, "alerts", "--ack", str(alert.alert_id))
    assert status == 1 and "--reason" in out
    status, out = await cli(capsys, "alerts", "--ack", str(alert.alert_id), "--reason", "IAM confirmed by phone")
    assert status == 0 and "auditor-test (declared)" in out
    status, out = await cli(capsys, "alerts", "--ack", str(alert.alert_id), "--reason", "again")
    assert status == 1 and "no open alert" in out
    assert await AlertStore(store.engine).open_alerts(engagement) == []
    [entry] = [e for e in await store.audit_entries(engagement) if e.action == "alert_acknowledged"]
    assert entry.actor == "auditor-test" and entry.details["reason"] == "IAM confirmed by phone"
    status, out = await cli(capsys, "verify-audit", contract)
    assert status == 0 and "chain intact" in out
