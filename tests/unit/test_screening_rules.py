"""The screening provider's pure rules: the jurisdiction table, the stage of a report, the firm-wide
default, and the webhook signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.checkr import signature, signature_valid
from adapters.checkr_webhook import MalformedBody, UnusableEvent, parse_event
from domain.screening import JurisdictionTableError, ProviderSnapshot, load_jurisdictions, stage, with_firm_provider
from domain.spec import parse_spec
from tests.sample_spec import spec_data


def test_the_default_table_permits_criminal_record_checks_only_where_the_law_does() -> None:
    table = load_jurisdictions()
    assert "criminal_record" in table.package_for("PT").checks
    for restricted in ("DE", "FR", "NO", "SE"):  # NO: YAML would read a bare NO as false
        assert table.package_for(restricted).checks == ["credentials_verification"]


def test_a_bad_table_is_refused_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "table.yaml"
    bad.write_text("default: {package: p, checks: []}\njurisdictions:\n  no: {package: p, checks: [c]}\n")
    with pytest.raises(JurisdictionTableError) as refused:
        load_jurisdictions(bad)
    assert "default.checks" in str(refused.value) and "jurisdictions" in str(refused.value)


def test_stage_reads_the_provider_snapshot() -> None:
    waiting = ProviderSnapshot(candidate_id="c1", invitation_id="i1", invitation_status="pending")
    assert stage(waiting) == "awaiting_consent"
    assert stage(waiting.model_copy(update={"invitation_status": "expired"})) == "consent_expired"
    report = waiting.model_copy(
        update={"invitation_status": "completed", "report_id": "r1", "report_status": "pending"}
    )
    assert stage(report) == "in_progress"
    assert stage(report.model_copy(update={"report_status": "suspended"})) == "suspended"
    assert stage(report.model_copy(update={"report_status": "dispute"})) == "in_progress"
    assert stage(report.model_copy(update={"report_status": "complete", "result": "consider"})) == "consider"
    assert stage(report.model_copy(update={"report_status": "complete", "result": "clear"})) == "clear"
    assert stage(report.model_copy(update={"report_status": "canceled"})) == "canceled"


def test_the_firm_wide_provider_applies_only_where_the_spec_says_nothing() -> None:
    plain = parse_spec(spec_data("http://127.0.0.1:1/t"))
    assert with_firm_provider(plain, "manual").screening is None  # today's manual check, unchanged
    chosen = with_firm_provider(plain, "checkr").screening
    assert chosen is not None and chosen.provider == "checkr"
    own = parse_spec({**spec_data("http://127.0.0.1:1/t"), "screening": {"provider": "manual"}})
    assert with_firm_provider(own, "checkr").screening == own.screening
    with pytest.raises(ValueError, match="poll_interval"):  # the floors hold where a person writes the spec
        parse_spec({**spec_data("http://127.0.0.1:1/t"), "screening": {"provider": "checkr", "poll_interval": "PT1S"}})


def test_signatures_are_checked_over_the_raw_body() -> None:
    body = b'{"id": "e1"}'
    assert signature_valid("key", body, signature("key", body))
    assert signature_valid("key", body, signature("key", body).upper())
    assert not signature_valid("key", body + b" ", signature("key", body))
    assert not signature_valid("other", body, signature("key", body))
    assert not signature_valid("key", body, None) and not signature_valid("key", body, "x" * 1000)


def test_events_are_parsed_defensively() -> None:
    event = parse_event(
        b'{"id":"e1","type":"report.completed","data":{"object":{"object":"report","id":"r1","candidate_id":"c1"}}}'
    )
    assert (event.event_id, event.candidate_id) == ("e1", "c1")
    account = parse_event(b'{"id":"e2","type":"account.updated","data":{"object":{"object":"account","id":"a1"}}}')
    assert account.candidate_id is None
    for body in (b"not json", b"[]", b"NaN", b"[" * 100 + b"]" * 100):
        with pytest.raises(MalformedBody):
            parse_event(body)
    for body in (b'{"id":"e\\n1","type":"report.completed"}', b'{"id":"e1","type":"report.completed","data":{}}'):
        with pytest.raises(UnusableEvent):
            parse_event(body)
