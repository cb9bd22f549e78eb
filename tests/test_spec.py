"""Spec validation: a bad spec is refused with a message that names the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.spec import SpecError, load_spec, parse_spec
from tests.sample_spec import spec_data


def test_a_valid_spec_parses_with_the_contract_defaults() -> None:
    spec = parse_spec(spec_data())
    assert spec.notice_period == timedelta(days=60)
    assert spec.transition_window == timedelta(days=30)
    assert spec.iam.deprovision == "deactivate"


def _broken(change: Any) -> dict[str, Any]:
    data = spec_data()
    change(data)
    return data


CASES = {
    "unknown role": (
        lambda d: d["engineers"][2].update(role="wizard"),
        "engineers[2].role: unknown role 'wizard'",
    ),
    "duplicate engineer email": (
        lambda d: d["engineers"][1].update(email="ALICE@firm.example"),
        "engineers[1].email: duplicate engineer email",
    ),
    "malformed email": (
        lambda d: d["engineers"][0].update(email="alice-at-firm"),
        "engineers[0].email",
    ),
    "zero duration": (lambda d: d.update(notice_period="P0D"), "notice_period: Value error, must be a positive"),
    "negative duration": (lambda d: d.update(transition_window=-5), "transition_window"),
    "production groups nobody may use": (
        lambda d: [e.update(production_access=False) for e in d["engineers"]],
        "roles.developer.production: production groups but no engineer",
    ),
    "production access on a role without production groups": (
        lambda d: d["engineers"][2].update(production_access=True),
        "engineers[2].production_access: role 'analyst' grants no production groups",
    ),
    "unknown field": (lambda d: d.update(notice_periode="P30D"), "notice_periode: Extra inputs are not permitted"),
    "unknown nested field": (lambda d: d["client"].update(vat="x"), "client.vat: Extra inputs are not permitted"),
    "missing contact": (
        lambda d: d["client"]["contacts"].pop("iam_owner"),
        "client.contacts.iam_owner: Field required",
    ),
    "bad contract id": (lambda d: d.update(contract_id="has space"), "contract_id"),
    "no engineers": (lambda d: d.update(engineers=[]), "engineers"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_spec_is_refused_naming_the_field(case: str) -> None:
    change, expected = CASES[case]
    with pytest.raises(SpecError) as error:
        parse_spec(_broken(change))
    assert expected.replace("Value error, ", "") in str(error.value)


def test_spec_files_in_yaml_and_json(tmp_path: Path) -> None:
    data = spec_data()
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "s.json").write_text(__import__("json").dumps(data))
    assert load_spec(tmp_path / "s.yaml") == load_spec(tmp_path / "s.json")
    (tmp_path / "bad.yaml").write_text("contract_id: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_the_sample_spec_is_valid() -> None:
    spec = load_spec(Path(__file__).resolve().parent.parent / "samples" / "engagement.yaml")
    assert spec.notice_period < timedelta(minutes=5)  # the demo shows every phase in minutes
