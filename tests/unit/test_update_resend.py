"""A command dropped with a failed workflow task (a continue-as-new racing it), or refused unapplied by
a run that is continuing as new, is sent again under the same update id; any other failure (another
refusal too) reaches the caller at once, and nothing is ever sent twice anew."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.any_pb2 import Any as AnyDetail
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import NotFoundFailure, WorkflowNotReadyFailure
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters import updates
from domain.commands import Ack, AskQuestion
from domain.vocabulary import Phase

QUESTION = AskQuestion(actor="ops", question_id="q1", text="Where is the DR plan?")
ACK = Ack(accepted="question noted", phase=Phase.DELIVERY)


def rpc_error(detail: Any, code: RPCStatusCode) -> RPCError:
    packed = AnyDetail()
    packed.Pack(detail)
    status = GrpcStatus(code=code.value, message="refused", details=[packed])
    return RPCError("refused", code, status.SerializeToString())


NOT_READY = rpc_error(WorkflowNotReadyFailure(), RPCStatusCode.FAILED_PRECONDITION)
GONE = rpc_error(NotFoundFailure(), RPCStatusCode.NOT_FOUND)


def refusal(kind: str) -> WorkflowUpdateFailedError:
    """An update's validator refused it (as the client raises it): ``kind`` is the refusal's type."""
    return WorkflowUpdateFailedError(ApplicationError("refused", type=kind))


FULL = refusal("ContinuingAsNew")
ILLEGAL = refusal("IllegalInPhase")


class Server:
    """Answers each execute_update with the next scripted outcome and records the update ids it saw."""

    def __init__(self, *outcomes: Exception | Ack) -> None:
        self.outcomes = list(outcomes)
        self.ids: list[str] = []

    async def execute_update(self, update: Any, command: Any, *, id: str, **_: Any) -> Ack:
        self.ids.append(id)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses are taken note of, not waited."""
    paused: list[float] = []

    async def note(seconds: float) -> None:
        paused.append(seconds)

    monkeypatch.setattr(updates, "_sleep", note)
    return paused


def test_the_not_ready_failure_is_recognised_by_its_detail() -> None:
    assert updates.not_ready(NOT_READY)
    assert not updates.not_ready(GONE)
    assert not updates.not_ready(RPCError("no details", RPCStatusCode.FAILED_PRECONDITION, b""))


async def test_a_dropped_update_is_resent_under_the_same_id() -> None:
    server = Server(NOT_READY, NOT_READY, ACK)
    assert await updates.execute(server, "ask_question", QUESTION) == ACK  # type: ignore[arg-type]
    assert len(server.ids) == 3 and len(set(server.ids)) == 1


async def test_two_commands_never_share_an_update_id() -> None:
    server = Server(ACK, ACK)
    for _ in range(2):
        await updates.execute(server, "ask_question", QUESTION)  # type: ignore[arg-type]
    assert len(set(server.ids)) == 2


@pytest.mark.parametrize("failure", [GONE, ILLEGAL], ids=["rpc-error", "another-refusal"])
async def test_any_other_failure_reaches_the_caller_at_once(failure: Exception) -> None:
    server = Server(failure, ACK)
    with pytest.raises(type(failure)) as raised:
        await updates.execute(server, "ask_question", QUESTION)  # type: ignore[arg-type]
    assert raised.value is failure and len(server.ids) == 1


@pytest.mark.parametrize("dropped", [NOT_READY, FULL], ids=["not-ready", "continuing-as-new"])
async def test_resending_outlasts_an_effect_a_full_run_waits_out_then_gives_up(
    dropped: Exception, no_pause: list[float]
) -> None:
    attempts = len(list(updates.pauses())) + 1
    server = Server(*[dropped] * attempts)
    with pytest.raises(type(dropped)):
        await updates.execute(server, "ask_question", QUESTION)  # type: ignore[arg-type]
    assert len(server.ids) == attempts and len(set(server.ids)) == 1
    assert 60 < sum(no_pause) <= updates.RESEND_FOR  # beyond an email attempt's 30 s, twice over
    assert max(no_pause) == updates.LONGEST_PAUSE and no_pause == sorted(no_pause)


async def test_a_command_refused_by_a_run_continuing_as_new_is_sent_to_the_next_run() -> None:
    assert updates.refused_for_the_next_run(FULL) and not updates.refused_for_the_next_run(ILLEGAL)
    server = Server(FULL, NOT_READY, FULL, ACK)
    assert await updates.execute(server, "ask_question", QUESTION) == ACK  # type: ignore[arg-type]
    assert len(server.ids) == 4 and len(set(server.ids)) == 1
