"""The body of a verified SendGrid Event Webhook post: its events, each usable or rejected alone.

Each event stands alone: one that is malformed (no id, a timestamp outside the years 2000 to 2199,
NUL or a lone surrogate anywhere, a message key longer than ours, nesting deeper than 16 levels, ...)
is rejected and described without its content, and the others are recorded. A body that is not a
JSON array, or nests deeper than the events may, is a bad request as a whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from adapters.http_endpoint import json_body
from domain.bounds import Text, UnixTime, jsonb_problem, nested_deeper_than
from domain.delivery import PROBLEM_STATES, event_state

MAX_EVENT_DEPTH = 16
"""An event is a flat object with a few small lists (categories) and objects (pool): deeper is not SendGrid."""
MAX_POST_DEPTH = 64
"""Deeper than this, the body as a whole is refused (an event deeper than MAX_EVENT_DEPTH, alone)."""
MAX_REASON_LENGTH = 1000
_UNPRINTABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class DeliveryEvent(BaseModel):
    """One event of a post. SendGrid merges the message's custom args into the event's top level.

    What is checked is what the database and the follow-up need; anything else SendGrid adds is kept
    as it came (in ``payload``), once it is known to be storable.
    """

    model_config = ConfigDict(extra="allow")
    event: Annotated[str, Text(30)]
    sg_event_id: Annotated[str, Text(200)]
    """SendGrid's id of the event (unique, indexed: a bounded length)."""
    timestamp: UnixTime
    """Unix time of the event, in the years 2000 to 2199."""
    email: Annotated[str, Text(320)] | None = None
    sg_message_id: Annotated[str, Text(500)] | None = None
    message_key: Annotated[str, Text(64)] | None = None
    """Our custom arg; absent on events of mail this system did not send."""
    reason: str | None = None
    """Free text from the receiving server: kept to its first 1000 characters, control characters as spaces."""
    response: str | None = None
    type: Annotated[str, Text(40)] | None = None
    """For a bounce: ``bounce`` or ``blocked``."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, value: object) -> object:
        problem = jsonb_problem(value, max_depth=MAX_EVENT_DEPTH) if isinstance(value, dict) else None
        if problem:
            raise ValueError(f"not storable: {problem}")
        return value

    @field_validator("message_key", "type", "email", "sg_message_id", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return None if value is None or value == "" else str(value)

    @field_validator("reason", "response", mode="before")
    @classmethod
    def _free_text(cls, value: object) -> object:
        if value is None or value == "":
            return None
        return _UNPRINTABLE.sub(" ", str(value).replace("\r\n", "\n")[:MAX_REASON_LENGTH]).strip() or None

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp, UTC)

    @property
    def problem(self) -> str | None:
        """``bounce``, ``blocked`` or ``dropped`` when this event says the message will not arrive."""
        state = event_state(self.event, self.type)
        if state not in PROBLEM_STATES:
            return None
        return "blocked" if self.type == "blocked" else self.event

    def raw(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class Rejection:
    """An entry of a verified post that is not a usable event, described without its content."""

    index: int
    sg_event_id: str | None
    """The entry's id when it is a sane one (an opaque id, not personal data)."""
    problems: list[str]
    """Field names and what is wrong, e.g. ``timestamp: Input should be less than ...``; never a value
    (pydantic's messages and ours do not repeat the input)."""

    def __str__(self) -> str:
        return f"entry {self.index} (sg_event_id {self.sg_event_id or 'unknown'}): {'; '.join(self.problems)}"


@dataclass(frozen=True)
class ParsedPost:
    events: list[DeliveryEvent]
    rejected: list[Rejection]
    """Entries that are not usable events (malformed, or not storable); recorded nowhere."""


def _rejection(index: int, entry: object, error: ValidationError) -> Rejection:
    raw_id = entry.get("sg_event_id") if isinstance(entry, dict) else None
    sane_id = raw_id if isinstance(raw_id, str) and re.fullmatch(r"[A-Za-z0-9._:=+/-]{1,100}", raw_id) else None
    problems = [
        f"{'.'.join(str(part)[:40] for part in item['loc']) or 'entry'}: {item['msg'][:120]}"
        for item in error.errors(include_url=False, include_input=False, include_context=False)[:5]
    ]
    return Rejection(index=index, sg_event_id=sane_id, problems=problems)


def parse_post(body: bytes) -> ParsedPost:
    """A post's JSON array of events, each usable or rejected; ValueError when the body is not one."""
    data = json_body(body)
    if not isinstance(data, list):
        raise ValueError("the body is not a JSON array of events")
    if nested_deeper_than(data, MAX_POST_DEPTH):
        raise ValueError(f"the body nests deeper than {MAX_POST_DEPTH} levels")
    events: list[DeliveryEvent] = []
    rejected: list[Rejection] = []
    for index, entry in enumerate(data):
        try:
            events.append(DeliveryEvent.model_validate(entry))
        except ValidationError as error:
            rejected.append(_rejection(index, entry, error))
    return ParsedPost(events=events, rejected=rejected)
