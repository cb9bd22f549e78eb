"""Decisions about the end of an engagement: notice and the end date, the knowledge-transfer
documents, the handover sessions, the transition window's questions, and access reviews."""

from __future__ import annotations

from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from domain import email_builders as facts
from domain.bounds import WebUrl
from domain.commands import (
    AnswerQuestion,
    AskQuestion,
    CancelSession,
    GiveNotice,
    MoveEndDate,
    RecordDocument,
    RecordSessionHeld,
    RequestAccessReview,
    RescheduleSession,
    ScheduleSession,
)
from domain.decisions.change import (
    Change,
    DuplicateQuestion,
    DuplicateSession,
    InvalidDate,
    InvalidDuration,
    InvalidValue,
    NoChange,
    fmt,
)
from domain.state import DocumentRecord, HandoverSession, Notice, Question
from domain.vocabulary import Phase


def give_notice(change: Change, command: GiveNotice) -> str:
    state = change.state
    now = change.now
    state.notice = Notice(given_by=command.given_by, given_at=now, actor=command.actor, reason=command.reason)
    state.end_date = now + change.spec.notice_period
    state.transition_ends_at = state.end_date + change.spec.transition_window
    change.audit(command.actor, "notice_given", given_by=command.given_by, end_date=state.end_date.isoformat())
    change.email(facts.notice_received(change.spec, state, command.given_by, now))
    change.enter(Phase.NOTICE, actor=command.actor, reason=f"notice given by the {command.given_by}")
    return f"notice recorded; the engagement ends {fmt(state.end_date)}"


def move_end_date(change: Change, command: MoveEndDate) -> str:
    if command.end_date.tzinfo is None:
        raise InvalidDate("end_date needs a time zone (e.g. 2027-03-01T17:00:00Z)")
    if command.end_date <= change.now:
        raise InvalidDate(f"the end date cannot move into the past (now {fmt(change.now)})")
    state = change.state
    previous = state.end_date
    state.end_date = command.end_date
    state.transition_ends_at = command.end_date + change.spec.transition_window
    change.audit(
        command.actor,
        "end_date_moved",
        previous=previous.isoformat() if previous else None,
        end_date=command.end_date.isoformat(),
    )
    change.email(facts.end_date_moved(change.spec, state, previous, command.reason))
    if change.strict:  # a session that would now end after the end date cannot take place
        for session in state.sessions:
            if session.status == "scheduled" and session.starts_at + session.duration > command.end_date:
                _cancel(change, session, actor=command.actor, reason="the end date moved before it")
    return f"the end date is now {fmt(command.end_date)}"


_URL: TypeAdapter[str] = TypeAdapter(WebUrl)


def record_document(change: Change, command: RecordDocument) -> str:
    if change.strict:
        try:
            _URL.validate_python(command.location)
        except ValidationError as error:
            raise InvalidValue(f"location: {error.errors()[0]['msg']}") from None
    state = change.state
    state.documents = [d for d in state.documents if d.name is not command.document]
    state.documents.append(
        DocumentRecord(
            name=command.document, location=command.location, delivered_at=change.now, delivered_by=command.actor
        )
    )
    change.record("document", command.document.value, command.actor)
    return f"{command.document.value} recorded as delivered"


def _require_future_start(
    change: Change, command: ScheduleSession | RescheduleSession, duration: timedelta | None = None
) -> None:
    if command.starts_at.tzinfo is None or command.starts_at <= change.now:
        raise InvalidDate("a session must start in the future, with a time zone")
    if command.duration is not None and command.duration <= timedelta(0):
        raise InvalidDuration("a session needs a positive duration")
    end_date = change.state.end_date
    length = command.duration or duration or timedelta(0)
    if change.strict and end_date is not None and command.starts_at + length > end_date:
        raise InvalidDate(f"a session must end before the end date ({fmt(end_date)})")


def schedule_session(change: Change, command: ScheduleSession) -> str:
    if any(s.session_id == command.session_id for s in change.state.sessions):
        raise DuplicateSession(f"session {command.session_id} already exists")
    _require_future_start(change, command)
    session = HandoverSession(
        session_id=command.session_id,
        title=command.title,
        starts_at=command.starts_at,
        duration=command.duration,
        location=command.location,
        join_url=command.join_url,
    )
    change.state.sessions.append(session)
    change.record("session", session.session_id, command.actor)
    change.email(facts.session_invite(change.spec, change.state, session, change.engagement_id))
    return f"session {session.session_id} scheduled for {fmt(session.starts_at)}; invites sent"


def reschedule_session(change: Change, command: RescheduleSession) -> str:
    session = change.require_scheduled_session(command.session_id)
    _require_future_start(change, command, session.duration)
    session.starts_at = command.starts_at
    session.duration = command.duration or session.duration
    session.location = command.location or session.location
    session.join_url = command.join_url or session.join_url
    session.sequence += 1
    change.record("session", session.session_id, command.actor)
    change.email(facts.session_rescheduled(change.spec, change.state, session, change.engagement_id))
    return f"session {session.session_id} moved to {fmt(session.starts_at)}; updated invites sent"


def _cancel(change: Change, session: HandoverSession, *, actor: str, reason: str | None) -> None:
    session.status = "cancelled"
    session.sequence += 1
    session.notes = reason
    change.record("session", session.session_id, actor)
    change.email(facts.session_cancelled(change.spec, change.state, session, change.engagement_id, reason))


def cancel_session(change: Change, command: CancelSession) -> str:
    session = change.require_scheduled_session(command.session_id)
    _cancel(change, session, actor=command.actor, reason=command.reason)
    return f"session {session.session_id} cancelled; cancellations sent"


def record_session_held(change: Change, command: RecordSessionHeld) -> str:
    session = change.require_scheduled_session(command.session_id)
    if change.strict and change.now < session.starts_at:
        raise InvalidDate(f"session {session.session_id} has not started yet ({fmt(session.starts_at)})")
    session.status = "held"
    session.held_at = change.now
    session.notes = command.notes
    change.record("session", session.session_id, command.actor)
    return f"session {session.session_id} recorded as held"


def ask_question(change: Change, command: AskQuestion) -> str:
    if any(q.question_id == command.question_id for q in change.state.questions):
        raise DuplicateQuestion(f"question {command.question_id} already exists")
    question = Question(question_id=command.question_id, text=command.text, asked_by=command.actor, asked_at=change.now)
    change.state.questions.append(question)
    change.record("question", question.question_id, command.actor)
    return f"question {question.question_id} recorded"


def answer_question(change: Change, command: AnswerQuestion) -> str:
    question = change.require_question(command.question_id)
    if question.answer is not None:
        raise NoChange(f"question {command.question_id} is already answered")
    question.answer = command.answer
    question.answered_by = command.actor
    question.answered_at = change.now
    change.record("question", question.question_id, command.actor)
    return f"question {question.question_id} answered"


def request_access_review(change: Change, command: RequestAccessReview) -> str:
    change.state.access_review_requested = True
    change.audit(command.actor, "access_review_requested")
    return "access review requested"
