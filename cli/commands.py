"""From the parsed command line to the command model the engagement's Update takes."""

from __future__ import annotations

import argparse
from datetime import timedelta

from cli.errors import CliError
from domain import commands as c
from domain.spec import EngineerSpec


def command_model(args: argparse.Namespace) -> c.Command:
    actor: str = args.actor
    name = args.command
    if name == "nda-signed":
        return c.RecordNdaSigned(actor=actor, signed_by=args.signed_by)
    if name == "add-engineer":
        engineer = EngineerSpec(
            name=args.name,
            email=args.email,
            role=args.role,
            production_access=args.production,
            jurisdiction=args.jurisdiction,
        )
        return c.AddEngineer(actor=actor, engineer=engineer)
    if name == "remove-engineer":
        return c.RemoveEngineer(actor=actor, email=args.email)
    if name == "change-role":
        return c.ChangeRole(actor=actor, email=args.email, role=args.role, production_access=args.production)
    if name == "record-check":
        return c.RecordCheckResult(actor=actor, email=args.email, outcome=args.outcome, notes=args.notes)
    if name == "give-notice":
        return c.GiveNotice(actor=actor, given_by=args.given_by, reason=args.reason)
    if name == "move-end-date":
        return c.MoveEndDate(actor=actor, end_date=args.end_date, reason=args.reason)
    if name == "record-document":
        return c.RecordDocument(actor=actor, document=args.document, location=args.location)
    if name == "schedule-session":
        return c.ScheduleSession(
            actor=actor,
            session_id=args.session_id,
            title=args.title,
            starts_at=args.starts_at,
            duration=timedelta(minutes=args.minutes),
            location=args.location,
            join_url=args.join_url,
        )
    if name == "session-held":
        return c.RecordSessionHeld(actor=actor, session_id=args.session_id, notes=args.notes)
    if name == "ask":
        return c.AskQuestion(actor=actor, question_id=args.question_id, text=args.text)
    if name == "answer":
        return c.AnswerQuestion(actor=actor, question_id=args.question_id, answer=args.text)
    if name == "review-access":
        return c.RequestAccessReview(actor=actor)
    if name == "certify":
        return c.CertifyAccess(actor=actor, round=args.round, email=args.email, decision=args.decision)
    if name == "revoke-now":
        return c.RevokeAccessNow(actor=actor, email=args.email, reason=args.reason)
    if name == "restore-access":
        return c.RestoreAccess(actor=actor, email=args.email)
    if name == "reschedule-session":
        duration = timedelta(minutes=args.minutes) if args.minutes else None
        return c.RescheduleSession(
            actor=actor,
            session_id=args.session_id,
            starts_at=args.starts_at,
            duration=duration,
            location=args.location,
            join_url=args.join_url,
        )
    if name == "cancel-session":
        return c.CancelSession(actor=actor, session_id=args.session_id, reason=args.reason)
    if name == "cancel":
        return c.CancelEngagement(actor=actor, reason=args.reason)
    if name == "retry-effect":
        return c.RetryParkedEffect(actor=actor, effect_id=args.effect_id, reason=args.reason)
    if name == "drop-effect":
        return c.DropParkedEffect(actor=actor, effect_id=args.effect_id, reason=args.reason)
    raise CliError(f"unknown command {name}")
