"""Bounds for every value that crosses an edge (the spec, the commands, the webhook), as pydantic types.

A value that passes these can be stored by PostgreSQL, put in an email header or an ``.ics`` file,
added to any date the engagement computes, and waited on by a timer, without error or flood. Each
refusal says what is wrong and never repeats the value (it may be huge, or personal).

Two kinds of rule, because a model is validated in two places:

* **always** (the edge and the worker decoding a workflow's input or an update): the shape (ISO 8601
  durations only, aware datetimes), the ranges that keep date arithmetic from overflowing, the
  characters PostgreSQL or an email header cannot take, the lengths the database and Temporal's
  payloads can hold;
* **at the edge only** (a person's spec or command, validated with ``edge_context``): the policy
  *floors* of durations, e.g. no NDA reminder more often than hourly. They are not checked when the
  worker decodes its input, so that a floor raised later can never stop an engagement in flight, and
  the demo (or a test) may lower them explicitly with ``allow_short_durations``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, GetCoreSchemaHandler, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema

# ---------------------------------------------------------------- the edge context

SHORT_DURATIONS = "allow_short_durations"
"""Validation-context key. Present (True or False) means "validated at the edge": the floors of
durations apply unless it is True. Absent (the worker decoding its input) means no floors."""


def edge_context(*, allow_short_durations: bool = False) -> dict[str, bool]:
    """The context for ``model_validate(..., context=...)`` at an edge (the CLI, the demo, a test)."""
    return {SHORT_DURATIONS: allow_short_durations}


def _floors_apply(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, Mapping) and SHORT_DURATIONS in context and context[SHORT_DURATIONS] is not True


def _refuse(kind: str, message: str, **facts: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, facts or None)


# ---------------------------------------------------------------- durations

MAX_DURATION = timedelta(days=3660)
"""No duration anywhere exceeds ten years: added to any instant of the safe range it stays a date."""
MIN_SHORT_DURATION = timedelta(seconds=1)
"""The floor that remains when short durations are allowed (the demo, tests): never a busy loop."""

_ISO_DURATION = re.compile(
    r"P(?!$)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?",
    re.ASCII,
)


def _describe(value: timedelta) -> str:
    """``P60D``, ``PT1H``, ``PT1S``: how the README and the refusals write a bound."""
    days, seconds = value.days, value.seconds
    time = "".join(
        f"{n}{unit}" for n, unit in ((seconds // 3600, "H"), (seconds % 3600 // 60, "M"), (seconds % 60, "S")) if n
    )
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if days or time else "PT0S"


@dataclass(frozen=True)
class Duration:
    """``Annotated[timedelta, Duration(floor=..., ceiling=...)]``: an ISO 8601 duration string.

    Refused always: bare numbers and booleans (``60`` is not "60 days"), other text, zero or
    negative, more than ``ceiling``. Refused at the edge unless short durations are allowed: less
    than ``floor``; with them allowed, less than one second. ``P1Y`` counts 365 days and ``P1M``
    30 days (as pydantic reads them): write days for a contractual period.
    """

    floor: timedelta
    ceiling: timedelta

    def __post_init__(self) -> None:
        if not MIN_SHORT_DURATION <= self.floor <= self.ceiling <= MAX_DURATION:
            raise ValueError("a Duration needs 1 s <= floor <= ceiling <= MAX_DURATION")

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            _iso_duration_only,
            core_schema.with_info_after_validator_function(self._check, handler(source)),
        )

    def _check(self, value: timedelta, info: ValidationInfo) -> timedelta:
        if value <= timedelta(0):
            raise _refuse("duration_not_positive", "must be a positive duration")
        if value > self.ceiling:
            raise _refuse("duration_too_long", "must be at most {ceiling}", ceiling=_describe(self.ceiling))
        if _floors_apply(info) and value < self.floor:
            raise _refuse(
                "duration_too_short",
                "must be at least {floor} (shorter ones only with ALLOW_SHORT_DURATIONS, for demos and tests)",
                floor=_describe(self.floor),
            )
        if value < MIN_SHORT_DURATION and info.context is not None and SHORT_DURATIONS in info.context:
            raise _refuse("duration_too_short", "must be at least PT1S")
        return value


def _iso_duration_only(value: object) -> object:
    if isinstance(value, timedelta):  # built in Python, not read from text
        return value
    if isinstance(value, str) and len(value) <= 64 and _ISO_DURATION.fullmatch(value):
        return value
    raise _refuse(
        "iso_duration",
        "must be an ISO 8601 duration such as P60D, P2W or PT2H (a bare number is ambiguous)",
    )


# ---------------------------------------------------------------- instants and dates

MIN_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)
"""Every instant or date a person gives lies in [2000, 2200): with MAX_DURATION added or taken away
it is still a datetime, a four-digit year in an ``.ics`` file and a PostgreSQL timestamp."""

_DATE_TEXT = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


def _written_date(value: object) -> object:
    # pydantic would read 1700000000 (or "1700000000") as a Unix time; a person writes a date.
    if isinstance(value, bool | int | float) or (isinstance(value, str) and not _DATE_TEXT.match(value)):
        raise _refuse("iso_date", "must be an ISO 8601 date (2027-03-01) or date and time with a zone")
    return value


def _instant_in_range(value: datetime) -> datetime:
    if not MIN_INSTANT <= value < MAX_INSTANT:
        raise _refuse("instant_out_of_range", "must lie in the years 2000 to 2199")
    return value


def _date_in_range(value: date) -> date:
    if not MIN_INSTANT.date() <= value < MAX_INSTANT.date():
        raise _refuse("date_out_of_range", "must lie in the years 2000 to 2199")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_written_date), AfterValidator(_instant_in_range)]
"""An ISO 8601 date and time with its zone (``2027-03-01T17:00:00Z``), in the years 2000 to 2199."""
CalendarDate = Annotated[date, BeforeValidator(_written_date), AfterValidator(_date_in_range)]
"""An ISO 8601 date (``2027-03-01``) in the years 2000 to 2199."""


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):
        raise _refuse("unix_time", "must be a Unix time in seconds")
    return value


UnixTime = Annotated[
    float,
    BeforeValidator(_not_a_bool),
    Field(allow_inf_nan=False, ge=MIN_INSTANT.timestamp(), lt=MAX_INSTANT.timestamp()),
]
"""Seconds since 1970 (as SendGrid stamps events), in the same years 2000 to 2199."""

# ---------------------------------------------------------------- text

NAME_LENGTH = 200
TITLE_LENGTH = 200
REFERENCE_LENGTH = 500
LONG_TEXT_LENGTH = 4000
URL_LENGTH = 2000
IDENTIFIER_LENGTH = 40

# What no text may hold: C0 and C1 controls and DEL (NUL cannot be stored, CR/LF split headers),
# the Unicode line and paragraph separators, the bidirectional embeddings, overrides and isolates
# (they make text read differently from what it is), and lone surrogates (not text: no UTF-8).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_FORBIDDEN_MULTILINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ADDRESS_SYNTAX = re.compile(r'[<>()\[\],;:"@\\]')
"""In a display name these could end the name and start another recipient (``Eve <eve@x>, Sam``)."""


def _what(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char in "\n\r\x0b\x0c\x85\u2028\u2029":
        return f"a line break ({code})"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate ({code}), which is not text"
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return f"a bidirectional control ({code})"
    return f"a control character ({code}{', ' + unicodedata.name(char) if unicodedata.name(char, '') else ''})"


@dataclass(frozen=True)
class Text:
    """``Annotated[str, Text(max_length=..., ...)]``: trimmed, not empty, without control characters.

    ``multiline`` lets line feeds through (CRLF is read as LF); ``display_name`` also refuses the
    characters of address syntax, so that the name cannot add a recipient to an email.
    """

    max_length: int
    multiline: bool = False
    display_name: bool = False

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: str) -> str:
        if len(value) > 2 * self.max_length + 1000:  # refuse a huge value before any further work
            raise _refuse("text_too_long", "is far too long (at most {limit} characters)", limit=self.max_length)
        if self.multiline:
            value = value.replace("\r\n", "\n")
        value = value.strip()
        forbidden = (_FORBIDDEN_MULTILINE if self.multiline else _FORBIDDEN).search(value)
        if forbidden:
            where = "" if self.multiline else "; it must be one line"
            raise _refuse(
                "text_control_character",
                "contains {what} at position {position}{where}",
                what=_what(forbidden.group()),
                position=forbidden.start(),
                where=where,
            )
        if not value:
            raise _refuse("text_empty", "must not be empty")
        if len(value) > self.max_length:
            raise _refuse(
                "text_too_long",
                "is {length} characters long; at most {limit}",
                length=len(value),
                limit=self.max_length,
            )
        if self.display_name and (syntax := _ADDRESS_SYNTAX.search(value)):
            raise _refuse(
                "display_name_syntax",
                'must not contain {char}: a name may not hold any of < > ( ) [ ] , ; : " @ \\ '
                "(they could add a recipient to an email)",
                char=repr(syntax.group()),
            )
        return value


SingleLine = Annotated[str, Text(NAME_LENGTH)]
"""One line of text, at most 200 characters: a client's name, a role, a reference."""
Title = Annotated[str, Text(TITLE_LENGTH)]
"""A handover session's title, one line."""
Reference = Annotated[str, Text(REFERENCE_LENGTH)]
"""A document reference or a clause's location, one line of at most 500 characters."""
LongText = Annotated[str, Text(LONG_TEXT_LENGTH, multiline=True)]
"""Reasons, notes, questions and answers: line feeds allowed, at most 4000 characters."""
PersonName = Annotated[str, Text(NAME_LENGTH, display_name=True)]
"""A person's name as shown in an email header: one line, no address syntax."""
GroupName = Annotated[str, Text(256)]
"""A group in the client's IAM (Entra ID allows 256 characters in a display name)."""


@dataclass(frozen=True)
class Identifier:
    """``Annotated[str, Identifier()]``: 1 to ``max_length`` ASCII letters, digits, ``.``, ``_``, ``-``."""

    max_length: int = IDENTIFIER_LENGTH

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def _check(self, value: str) -> str:
        if not (0 < len(value) <= self.max_length and re.fullmatch(r"[A-Za-z0-9._-]+", value, re.ASCII)):
            raise _refuse("identifier", "must be 1 to {limit} letters, digits, '.', '_' or '-'", limit=self.max_length)
        return value


Id = Annotated[str, Identifier()]
"""A session or question id: 1 to 40 ASCII letters, digits, '.', '_' or '-'."""


def _web_url(value: str) -> str:
    if len(value) > URL_LENGTH:
        raise _refuse(
            "url_too_long", "is {length} characters long; at most {limit}", length=len(value), limit=URL_LENGTH
        )
    if any(unicodedata.category(c)[0] in "CZ" for c in value):
        raise _refuse("url_whitespace", "must be a URL without spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a port out of range)
    except ValueError:
        raise _refuse("url", "must be an http or https URL") from None
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise _refuse("url", "must be an http or https URL with a host, e.g. https://wiki.example/runbooks")
    if parts.username is not None or parts.password is not None:
        raise _refuse("url_credentials", "must not carry a user name or password (it would be shown to people)")
    return value


WebUrl = Annotated[str, AfterValidator(_web_url)]
"""An http(s) URL with a host, no credentials, no whitespace or control characters, at most 2000."""

# ---------------------------------------------------------------- integers the database stores

INT32_MAX = 2**31 - 1
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
"""What an ``Integer`` column holds."""
SessionLength = Annotated[timedelta, Duration(floor=timedelta(minutes=1), ceiling=timedelta(hours=12))]
"""A handover session's length: one minute to twelve hours (stored as int32 seconds)."""

# ---------------------------------------------------------------- JSON PostgreSQL can store


def jsonb_problem(value: object, *, max_depth: int = 32) -> str | None:
    """Why PostgreSQL's JSONB (or its text columns) would refuse ``value``, or None when it would not.

    Refused: NUL or a lone surrogate in any string or key, a number that is not finite, nesting deeper
    than ``max_depth``. The answer names the problem, never the value (it may be personal).
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        if isinstance(item, str):
            if "\x00" in item or _SURROGATE.search(item):
                return "a text holds NUL or a lone surrogate"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "a number is not finite"
        elif isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def nested_deeper_than(value: object, limit: int) -> bool:
    """Whether parsed JSON nests deeper than ``limit`` levels (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False
