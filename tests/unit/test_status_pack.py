"""The status view as a run's memo keeps it: packed small, bounded, and read back only when whole."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from domain.spec import parse_spec
from domain.state import DeliveryProblem, EngagementState, EngineerState, Question
from domain.views import STATUS_MEMO_BOUND, pack_status, status_view, unpack_status
from domain.vocabulary import CheckStatus
from tests.sample_spec import spec_data

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)
SPEC = parse_spec(spec_data())


def state(questions: list[str], reasons: list[str]) -> EngagementState:
    engineers = [EngineerState(spec=e, check=CheckStatus.CLEARED) for e in SPEC.engineers]
    return EngagementState(
        contract_signed_at=NOW,
        engineers=engineers,
        questions=[
            Question(question_id=f"q{n}", text=t, asked_by="lee", asked_at=NOW) for n, t in enumerate(questions)
        ],
        delivery_problems=[
            DeliveryProblem(
                message_key=f"m{n}", kind="nda_request", recipient="x@y.example", event="bounce", reason=r, at=NOW
            )
            for n, r in enumerate(reasons)
        ],
    )


def test_a_usual_view_packs_to_a_few_hundred_bytes() -> None:
    view = status_view(SPEC, state([], []))
    packed = pack_status(view.model_dump_json())
    assert packed is not None and len(packed) < 1024, len(packed or b"")
    assert unpack_status(packed) == view


@given(
    questions=st.lists(st.text(max_size=2000), max_size=12),
    reasons=st.lists(st.text(max_size=600), max_size=30),
)
def test_a_view_packs_within_the_bound_and_back_or_not_at_all(questions: list[str], reasons: list[str]) -> None:
    view = status_view(SPEC, state(questions, reasons))
    packed = pack_status(view.model_dump_json())
    if packed is None:
        assert len(zlib.compress(view.model_dump_json().encode(), 6)) > STATUS_MEMO_BOUND
    else:
        assert len(packed) <= STATUS_MEMO_BOUND
        assert unpack_status(packed) == view


def test_anything_else_in_the_memo_is_not_a_view() -> None:
    view = status_view(SPEC, state([], []))
    packed = pack_status(view.model_dump_json())
    assert packed is not None
    bomb = zlib.compress(b" " * (64 * 1024 * 1024))  # 64 MB of spaces: stopped at 4 MB
    for other in (b"", b"not zlib", packed[:-3], zlib.compress(b'{"phase": "delivery"}'), bomb, packed + b"x"):
        assert unpack_status(other) is None
