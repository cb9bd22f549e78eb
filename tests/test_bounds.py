"""The bounds every edge applies (domain/bounds.py), over wide inputs: whatever they accept can be
added to a date, put in an email header and stored; whatever they refuse is refused with a message."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from email.utils import getaddresses
from typing import Annotated, Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from domain.bounds import (
    MAX_DURATION,
    MAX_INSTANT,
    MIN_INSTANT,
    Duration,
    Id,
    Instant,
    LongText,
    PersonName,
    SessionLength,
    SingleLine,
    UnixTime,
    WebUrl,
    edge_context,
    jsonb_problem,
)

CHECKS = settings(database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

Reminder = Annotated[timedelta, Duration(floor=timedelta(hours=1), ceiling=timedelta(days=90))]
reminder: TypeAdapter[timedelta] = TypeAdapter(Reminder)
instant: TypeAdapter[datetime] = TypeAdapter(Instant)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)

# ---------------------------------------------------------------- durations


@CHECKS
@given(st.timedeltas(min_value=timedelta(microseconds=1), max_value=MAX_DURATION))
def test_a_duration_read_back_from_the_converter_format_is_the_same(value: timedelta) -> None:
    """The worker decodes what pydantic wrote (``P1Y35DT3H0.001S``): nothing it wrote is refused."""
    wide: TypeAdapter[timedelta] = TypeAdapter(Annotated[timedelta, Duration(floor=MAX_DURATION, ceiling=MAX_DURATION)])
    assert wide.validate_json(wide.dump_json(value)) == value


@CHECKS
@given(json_values | st.timedeltas())
def test_a_duration_is_an_iso_string_within_its_ceiling_or_refused(value: Any) -> None:
    try:
        accepted = reminder.validate_python(value)
    except ValidationError as error:
        assert error.errors()[0]["msg"].startswith("must ")
        return
    assert isinstance(value, timedelta | str) and not isinstance(value, bool)
    assert timedelta(0) < accepted <= timedelta(days=90)


@pytest.mark.parametrize("value", [60, 1.5, True, "60", "", "P", "PT", "P1DT", "1 day", "-P1D", "P1S", "PT1D", "P1D "])
def test_what_is_not_an_iso_8601_duration_is_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="must be an ISO 8601 duration"):
        reminder.validate_python(value)


def test_a_floor_holds_at_the_edge_only_and_yields_to_the_explicit_setting() -> None:
    assert reminder.validate_python("PT20S") == timedelta(seconds=20)  # the worker decoding its input
    with pytest.raises(ValidationError, match="must be at least PT1H"):
        reminder.validate_python("PT20S", context=edge_context())
    assert reminder.validate_python("PT20S", context=edge_context(allow_short_durations=True)) == timedelta(seconds=20)
    with pytest.raises(ValidationError, match="must be at least PT1S"):
        reminder.validate_python("PT0.001S", context=edge_context(allow_short_durations=True))
    with pytest.raises(ValidationError, match="must be at most P90D"):
        reminder.validate_python("P91D", context=edge_context(allow_short_durations=True))


def test_a_duration_cannot_be_declared_beyond_ten_years() -> None:
    with pytest.raises(ValueError, match="MAX_DURATION"):
        Duration(floor=timedelta(days=1), ceiling=timedelta(days=4000))


def test_a_session_fits_the_int32_seconds_column() -> None:
    session: TypeAdapter[timedelta] = TypeAdapter(SessionLength)
    assert session.validate_python("PT12H").total_seconds() < 2**31
    with pytest.raises(ValidationError, match="must be at most PT12H"):
        session.validate_python("PT12H1S")
    with pytest.raises(ValidationError, match="must be at least PT1M"):
        session.validate_python("PT30S", context=edge_context())


# ---------------------------------------------------------------- instants


@CHECKS
@given(
    st.datetimes(
        timezones=st.just(UTC) | st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))
    ),
    st.timedeltas(min_value=-MAX_DURATION, max_value=MAX_DURATION),
)
def test_an_accepted_instant_plus_any_bounded_duration_is_still_a_date(when: datetime, delta: timedelta) -> None:
    try:
        accepted = instant.validate_python(when.isoformat())
    except ValidationError as error:
        assert error.errors()[0]["msg"] == "must lie in the years 2000 to 2199"
        assert not MIN_INSTANT <= when < MAX_INSTANT
        return
    moved = accepted + delta
    assert 1000 <= moved.astimezone(UTC).year <= 9999  # a four-digit year in an .ics DTSTART
    assert len(moved.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")) == 16


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2027-03-01T17:00:00", "timezone"),
        (1767225600, "must be an ISO 8601 date"),
        ("1767225600", "must be an ISO 8601 date"),
        (True, "must be an ISO 8601 date"),
        ("9999-12-31T23:59:59Z", "must lie in the years 2000 to 2199"),
        ("1970-01-01T00:00:00Z", "must lie in the years 2000 to 2199"),
    ],
)
def test_an_instant_needs_a_zone_and_a_sane_year(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        instant.validate_python(value)


@pytest.mark.parametrize("value", [1e20, -1.0, math.inf, math.nan, True, "soon"])
def test_a_unix_time_is_a_finite_number_of_the_same_years(value: object) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(UnixTime).validate_python(value)


# ---------------------------------------------------------------- text


class Texts(BaseModel):
    line: SingleLine | None = None
    long: LongText | None = None
    name: PersonName | None = None
    id: Id | None = None


FORBIDDEN = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F)]}
FORBIDDEN |= {chr(c) for c in range(0x2066, 0x206A)}


@CHECKS
@given(st.text(alphabet=st.characters(codec=None), max_size=300))
def test_accepted_text_is_trimmed_one_line_and_bounded(value: str) -> None:
    for field, limit, allowed in (("line", 200, set()), ("long", 4000, {"\n"})):
        try:
            accepted = getattr(Texts.model_validate({field: value}), field)
        except ValidationError as error:
            assert error.errors()[0]["msg"].split(" ")[0] in {"contains", "must", "is"}
            continue
        assert accepted == accepted.strip() and 0 < len(accepted) <= limit
        assert not (set(accepted) & (FORBIDDEN - allowed)), "a forbidden character passed"
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in accepted)
        accepted.encode("utf-8")  # PostgreSQL stores UTF-8


@CHECKS
@given(st.text(max_size=60) | st.sampled_from(["Eve <eve@evil.example>, Sam", 'a"b', "x;y", "Sam (Acme", "Sam)"]))
def test_a_display_name_never_adds_or_changes_a_recipient(value: str) -> None:
    try:
        name = Texts(name=value).name
    except ValidationError:
        return
    assert name is not None
    header = f"{name} <sam@acme.example>"  # how adapters/email.py writes the To: header
    assert [address for _, address in getaddresses([header])] == ["sam@acme.example"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Acme\x00", "contains a control character (U+0000) at position 4; it must be one line"),
        ("a\u2028b", "contains a line break (U+2028) at position 1"),
        ("a\ud800", "contains a lone surrogate (U+D800)"),
        ("\u202egnp.exe", "contains a bidirectional control (U+202E)"),
        ("a\tb", "contains a control character (U+0009"),
        ("x" * 201, "is 201 characters long; at most 200"),
        ("x" * 10_000_000, "is far too long (at most 200 characters)"),
        (" \n ", "must not be empty"),
    ],
)
def test_a_refusal_names_the_problem_and_not_the_value(value: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Texts(line=value)
    text = refused.value.errors()[0]["msg"]
    assert message in text and len(text) < 200


def test_long_text_keeps_line_feeds_and_reads_crlf_as_lf() -> None:
    assert Texts(long="  line one\r\nline two  ").long == "line one\nline two"
    with pytest.raises(ValidationError, match="contains a control character"):
        Texts(long="tab\there")


@pytest.mark.parametrize("value", ["arch-1", "q.2", "A_b"])
def test_an_identifier_is_short_plain_ascii(value: str) -> None:
    assert Texts(id=value).id == value
    for bad in ("", "a b", "é", "x" * 41, "a\n"):
        with pytest.raises(ValidationError, match="must be 1 to 40 letters"):
            Texts(id=bad)


# ---------------------------------------------------------------- URLs


@CHECKS
@given(st.text(max_size=80) | st.from_regex(r"\Ahttps?://[a-z.]{1,10}(:\d{1,6})?/\S{0,20}\Z"))
def test_an_accepted_url_is_http_with_a_host_and_nothing_hidden(value: str) -> None:
    try:
        url = TypeAdapter(WebUrl).validate_python(value)
    except ValidationError:
        return
    parts = urlsplit(url)
    assert parts.scheme.lower() in {"http", "https"} and parts.hostname and parts.username is None
    assert not any(c.isspace() or c in FORBIDDEN for c in url) and len(url) <= 2000


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", "https://u:p@wiki.example/x", "https://wiki.example/a b", "https:///x", "http://[x"],
)
def test_urls_that_are_not_plain_web_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(WebUrl).validate_python(value)


# ---------------------------------------------------------------- JSON PostgreSQL can store


@CHECKS
@given(json_values)
def test_jsonb_problem_finds_exactly_what_postgresql_refuses(value: Any) -> None:
    problem = jsonb_problem(value)
    texts = list(_strings(value))
    try:
        json.dumps(value, allow_nan=False)
        refused = any("\x00" in s or any(0xD800 <= ord(c) <= 0xDFFF for c in s) for s in texts)
    except ValueError:  # NaN or an infinity, which JSONB cannot hold
        refused = True
    assert (problem is not None) == refused


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_jsonb_problem_bounds_depth() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    assert jsonb_problem(deep) == "nested deeper than 32 levels"
    assert jsonb_problem(deep, max_depth=64) is None
