"""Spec validation: a bad spec is refused with a message that names the field."""

from __future__ import annotations

import contextlib
import copy
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.spec import EngagementSpec, SpecError, load_spec, parse_spec
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
    "zero duration": (lambda d: d.update(notice_period="P0D"), "notice_period: must be a positive duration"),
    "negative duration": (lambda d: d.update(transition_window="-P5D"), "transition_window: must be an ISO 8601"),
    "notice in bare seconds": (lambda d: d.update(notice_period=60), "notice_period: must be an ISO 8601 duration"),
    "notice as a boolean": (lambda d: d.update(notice_period=True), "notice_period: must be an ISO 8601 duration"),
    "notice as a numeric string": (lambda d: d.update(notice_period="60"), "notice_period: must be an ISO 8601"),
    "notice of 8000 years": (lambda d: d.update(notice_period="P8000Y"), "notice_period: must be at most P1095D"),
    "reminders every millisecond": (
        lambda d: d.update(nda_reminder_interval="PT0.001S"),
        "nda_reminder_interval: must be at least PT1H",
    ),
    "reviews every hour": (
        lambda d: d.update(access_review_interval="PT1H"),
        "access_review_interval: must be at least P1D",
    ),
    "revocation alert after a week": (
        lambda d: d.update(revocation_alert_after="P7D"),
        "revocation_alert_after: must be at most P1D",
    ),
    "start in the year 9999": (
        lambda d: d.update(start_date="9999-12-31"),
        "start_date: must lie in the years 2000 to 2199",
    ),
    "start as a Unix time": (lambda d: d.update(start_date=1767225600), "start_date: must be an ISO 8601 date"),
    "NUL in the client's name": (
        lambda d: d["client"].update(name="Acme\x00Corp"),
        "client.name: contains a control character (U+0000",
    ),
    "newline in a contact's name": (
        lambda d: d["client"]["contacts"]["signatory"].update(name="Sam\nBcc: x@evil.example"),
        "client.contacts.signatory.name: contains a line break (U+000A) at position 3; it must be one line",
    ),
    "a display name that adds a recipient": (
        lambda d: d["firm_lead"].update(name="Eve <eve@evil.example>, Sam"),
        "firm_lead.name: must not contain '<'",
    ),
    "a bidi override in an engineer's name": (
        lambda d: d["engineers"][0].update(name="Alice \u202eveD"),
        "engineers[0].name: contains a bidirectional control (U+202E)",
    ),
    "a 10 MB client name": (lambda d: d["client"].update(name="A" * 10_000_000), "client.name: is far too long"),
    "a 201-character name": (
        lambda d: d["client"].update(name="A" * 201),
        "client.name: is 201 characters long; at most 200",
    ),
    "a blank name": (lambda d: d["client"].update(name="   "), "client.name: must not be empty"),
    "a tab in a group": (
        lambda d: d["roles"]["analyst"].update(non_production=["tick\teting"]),
        "roles.analyst.non_production[0]: contains a control character (U+0009",
    ),
    "an empty group name": (lambda d: d["roles"]["analyst"].update(non_production=[" "]), "must not be empty"),
    "a role name with a line break": (
        lambda d: d["roles"].update({"ops\nteam": {"non_production": ["x"]}}),
        "contains a line break",
    ),
    "an SCIM URL with credentials": (
        lambda d: d["iam"].update(scim_base_url="https://admin:pw@idp.example/scim"),
        "iam.scim_base_url: must not carry a user name or password",
    ),
    "an SCIM URL that is not http": (
        lambda d: d["iam"].update(scim_base_url="file:///etc/passwd"),
        "iam.scim_base_url: must be an http or https URL",
    ),
    "a reference with a carriage return": (
        lambda d: d["agreement"].update(nda_reference="NDA-1\rX"),
        "agreement.nda_reference: contains a line break (U+000D)",
    ),
    "an absurd time zone": (
        lambda d: d["firm_lead"].update(timezone="A" * 10_000),
        "firm_lead.timezone: unknown time zone",
    ),
    "too many engineers": (
        lambda d: d.update(engineers=d["engineers"] * 70),
        "engineers: List should have at most 200 items",
    ),
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


def test_text_is_trimmed_and_names_may_hold_apostrophes_and_accents() -> None:
    data = spec_data()
    data["client"]["name"] = "  Acme & Söhne (Europe) GmbH  "
    data["firm_lead"]["name"] = "Fran O'Leary-Núñez"
    spec = parse_spec(data)
    assert spec.client.name == "Acme & Söhne (Europe) GmbH"
    assert spec.firm_lead.name == "Fran O'Leary-Núñez"


def test_a_client_name_may_hold_a_comma_but_a_person_name_may_not() -> None:
    data = spec_data()
    data["client"]["name"] = "Acme, Inc."
    assert parse_spec(data).client.name == "Acme, Inc."
    data["firm_lead"]["name"] = "Lead, Fran"
    with pytest.raises(SpecError, match=r"firm_lead.name: must not contain ','"):
        parse_spec(data)


def test_short_durations_pass_only_when_allowed_and_never_below_a_second() -> None:
    data = spec_data() | {"notice_period": "PT3S", "nda_reminder_interval": "PT20S", "revocation_alert_after": "PT2M"}
    with pytest.raises(SpecError) as refused:
        parse_spec(data)
    why = " (shorter ones only with ALLOW_SHORT_DURATIONS, for demos and tests)"
    assert str(refused.value).splitlines() == [
        "notice_period: must be at least P1D" + why,
        "nda_reminder_interval: must be at least PT1H" + why,
        "revocation_alert_after: must be at least PT5M" + why,
    ]
    spec = parse_spec(data, allow_short_durations=True)
    assert spec.notice_period == timedelta(seconds=3)
    with pytest.raises(SpecError, match="nda_reminder_interval: must be at least PT1S"):
        parse_spec(data | {"nda_reminder_interval": "PT0.001S"}, allow_short_durations=True)
    with pytest.raises(SpecError, match="notice_period: must be at most P1095D"):
        parse_spec(data | {"notice_period": "P8000Y"}, allow_short_durations=True)


def test_the_worker_decoding_its_input_checks_ceilings_and_text_but_not_floors() -> None:
    """The data converter validates the workflow input without a context: a floor raised later must
    not stop an engagement in flight, but a value that would overflow or wedge it is still refused."""
    short = parse_spec(spec_data() | {"nda_reminder_interval": "PT20S"}, allow_short_durations=True)
    encoded = short.model_dump(mode="json")
    assert EngagementSpec.model_validate(encoded) == short
    assert EngagementSpec.model_validate_json(short.model_dump_json()) == short
    for broken in ({"notice_period": "P8000Y"}, {"notice_period": 60}, {"start_date": "9999-01-01"}):
        with pytest.raises(ValidationError):
            EngagementSpec.model_validate(encoded | broken)
    with pytest.raises(ValidationError, match="control character"):
        EngagementSpec.model_validate(encoded | {"client": encoded["client"] | {"name": "A\x00"}})


def test_long_durations_round_trip_through_the_converter_format() -> None:
    """pydantic writes 400 days as P1Y35D: what the worker decodes must be what was started."""
    spec = parse_spec(spec_data() | {"notice_period": "P400DT3H", "transition_window": "P52W"})
    encoded = spec.model_dump(mode="json")
    assert encoded["notice_period"].startswith("P1Y")
    assert EngagementSpec.model_validate(encoded).notice_period == timedelta(days=400, hours=3)


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


SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "engagement.yaml"


def test_the_sample_spec_is_valid_for_the_demo_only() -> None:
    spec = load_spec(SAMPLE, allow_short_durations=True)
    assert spec.notice_period < timedelta(minutes=5)  # the demo shows every phase in minutes
    with pytest.raises(SpecError, match=r"notice_period: must be at least P1D .*ALLOW_SHORT_DURATIONS"):
        load_spec(SAMPLE)


# ---------------------------------------------------------------- reading a spec file within limits


def _written(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_a_spec_file_over_one_mebibyte_is_refused_unread(tmp_path: Path) -> None:
    path = _written(tmp_path, b"# padding\n" * 120_000)
    with pytest.raises(SpecError, match=r"spec.yaml is larger than 1024 KiB"):
        load_spec(path)


def test_a_spec_file_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _written(tmp_path, yaml.safe_dump(spec_data()).encode("utf-8").replace(b"Acme Corp", b"Acme \xe9 Corp"))
    with pytest.raises(SpecError, match=r"spec.yaml is not UTF-8 text \(byte 0xe9 at offset \d+\)"):
        load_spec(path)
    bom = _written(tmp_path, b"\xef\xbb\xbf" + yaml.safe_dump(spec_data()).encode("utf-8"))
    assert load_spec(bom).client.name == "Acme Corp"


def test_a_key_written_twice_is_refused_naming_the_key_and_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(spec_data(), sort_keys=False) + "notice_period: P90D\nnotice_period: P30D\n"
    line = text.splitlines().index("notice_period: P30D") + 1
    with pytest.raises(SpecError, match=rf"spec.yaml, line {line}: the key 'notice_period' appears twice"):
        load_spec(_written(tmp_path, text))
    duplicated_json = '{"contract_id": "A-1", "contract_id": "A-2"}'
    with pytest.raises(SpecError, match="line 1: the key 'contract_id' appears twice"):
        load_spec(_written(tmp_path, duplicated_json))


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    with pytest.raises(SpecError, match=r"line 2: aliases \(\*name\) are not allowed"):
        load_spec(_written(tmp_path, "\n".join(lines)))


def test_deep_nesting_and_a_flood_of_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="nested deeper than 32 levels"):
        load_spec(_written(tmp_path, "[" * 50_000 + "]" * 50_000))
    with pytest.raises(SpecError, match="more than 50000 values"):
        load_spec(_written(tmp_path, "[" + "1," * 60_000 + "1]"))


def test_values_yaml_cannot_build_are_refused_plainly(tmp_path: Path) -> None:
    for text in ("start_date: 2026-02-30", "x: " + "9" * 5000, "x: !!python/object:os.system {}", "a: \x07"):
        with pytest.raises(SpecError) as refused:
            load_spec(_written(tmp_path, text))
        assert str(refused.value).startswith(str(tmp_path / "spec.yaml"))


@settings(database=None, deadline=None, max_examples=200)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_give_a_spec_or_a_spec_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        path.write_bytes(content)
        try:
            load_spec(path)
        except SpecError as error:
            assert str(error)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.dates().map(str),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)


def _replace_one_leaf(data: Any, path: list[int], value: Any) -> Any:
    """The spec with one value (chosen by ``path``) replaced: a near-valid spec, wrong in one place."""
    if not path or not isinstance(data, dict | list) or not data:
        return value
    keys = list(data) if isinstance(data, dict) else list(range(len(data)))
    key = keys[path[0] % len(keys)]
    changed = copy.copy(data)
    changed[key] = _replace_one_leaf(data[key], path[1:], value)
    return changed


@settings(database=None, deadline=None, max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=50), max_size=5), JSON, st.booleans())
def test_a_spec_wrong_in_any_one_place_gives_a_spec_or_a_spec_error(path: list[int], value: Any, short: bool) -> None:
    data = _replace_one_leaf(spec_data(), path, value)
    try:
        spec = parse_spec(data, allow_short_durations=short)
    except SpecError as error:
        assert str(error) and len(str(error).splitlines()) <= 21
        return
    assert EngagementSpec.model_validate_json(spec.model_dump_json()) == spec  # the worker can decode it


@settings(database=None, deadline=None, max_examples=200)
@given(JSON)
def test_any_structure_gives_a_spec_or_a_spec_error(data: Any) -> None:
    with contextlib.suppress(SpecError):
        parse_spec(data)
