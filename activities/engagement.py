"""The engagement's activities: thin, named steps over the adapters.

Every activity is safe to retry: storage writes are upserts keyed by business keys, audit entries
are keyed by the activity attempt's identity, email is keyed per message, SCIM changes converge on
the desired state and are read back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.payloads import (
    AccessOutcome,
    AccessRequest,
    AlertInput,
    AuditInput,
    DocumentInput,
    EngineerRecord,
    LedgerRecord,
    PhaseChange,
    QuestionInput,
    RecordBatch,
    RecordEngagementInput,
    RecordsWritten,
    SessionInput,
    ledger_entry,
)
from activities.record_batch import write_in_order
from adapters.alerts import AlertStore
from adapters.audit_writer import AuditEntry
from adapters.db import EngagementStore
from adapters.iam_convergence import Target
from adapters.identity_access import apply_identity_access
from adapters.scim import DirectoryPool, GroupNotFound
from adapters.scim_http import ScimRefused, ScimTransientError
from adapters.shared_identities import SharedIdentities
from domain.effects import LedgerEffect
from domain.state import EngineerAccessReadBack
from domain.vocabulary import person_ref

ALERT_TIMEOUT_SECONDS = 2.0
"""How long an alert raised from inside an IAM activity may take (the IAM calls are done by then)."""


def _event_key(suffix: str = "", effect_id: int = 0) -> str:
    """Stable across retries of one activity, distinct across activities and runs; for a queued effect
    (``effect_id``), stable across runs too: an effect a full run let go of after its worker had
    written it (``burst-bound``) is performed again by the next run, and writes nothing twice."""
    info = activity.info()
    if effect_id:
        return f"{info.workflow_id}/effect/{effect_id}{suffix}"
    return f"{info.workflow_run_id}/{info.activity_id}{suffix}"


def _entry(at: datetime, actor: str, action: str, details: dict[str, Any], effect_id: int = 0) -> AuditEntry:
    """The audit entry of this activity attempt, written in the transaction of the record it is about."""
    return AuditEntry(event_key=_event_key(effect_id=effect_id), at=at, actor=actor, action=action, details=details)


class _Acted(Protocol):
    """An input that performs a queued effect someone caused: who, when, and which effect."""

    @property
    def at(self) -> datetime: ...
    @property
    def actor(self) -> str: ...
    @property
    def effect_id(self) -> int: ...


def _entry_for(request: _Acted, action: str, details: dict[str, Any]) -> AuditEntry:
    """The audit entry of an input that names who acted and when."""
    return _entry(request.at, request.actor, action, details, request.effect_id)


class EngagementActivities:
    def __init__(
        self,
        store: EngagementStore,
        directories: DirectoryPool,
        alerts: AlertStore,
        shared: SharedIdentities | None = None,
    ) -> None:
        self._store = store
        self._directories = directories
        self._alerts = alerts
        self._shared = shared or SharedIdentities(store.engine)

    @activity.defn(name="record_engagement")
    async def record_engagement(self, request: RecordEngagementInput) -> None:
        await self._store.record_engagement(
            request.engagement_id,
            request.spec,
            request.at,
            audit=_entry(
                request.at,
                "ops",
                "engagement_recorded",
                {
                    "contract_id": request.spec.contract_id,
                    "engagement_type": request.spec.engagement_type.value,
                    "nda_reference": request.spec.agreement.nda_reference,
                    "ip_assignment_clause": request.spec.agreement.ip_assignment_clause,
                },
                request.effect_id,
            ),
        )

    @activity.defn(name="record_phase")
    async def record_phase(self, change: PhaseChange) -> None:
        await self._store.record_phase(
            change.engagement_id,
            change.phase,
            change.at,
            {**change.reached()},
            audit=_entry_for(change, f"phase:{change.phase.value}", {"reason": change.reason}),
        )

    @activity.defn(name="append_audit")
    async def append_audit(self, entry: AuditInput) -> None:
        await self._store.append_audit(
            engagement_id=entry.engagement_id,
            event_key=_event_key(effect_id=entry.effect_id),
            at=entry.at,
            actor=entry.actor,
            action=entry.action,
            details=entry.details,
        )

    @activity.defn(name="save_engineer")
    async def save_engineer(self, record: EngineerRecord) -> None:
        await self._store.save_engineer(
            record.engagement_id,
            record.engineer,
            record.at,
            audit=_entry_for(
                record,
                record.action,
                {
                    "engineer": record.engineer.email,
                    "role": record.engineer.spec.role,
                    "production_access": record.engineer.spec.production_access,
                    "check": record.engineer.check.value,
                },
            ),
        )

    @activity.defn(name="apply_access")
    async def apply_access(self, request: AccessRequest) -> EngineerAccessReadBack:
        """Converge one identity on its plan, read it back, then record it (engagements started before
        the IAM lane; newer ones record through ``record_access`` after the fact)."""
        try:
            outcome = await self._converge(request)
        except ApplicationError as error:
            if not error.non_retryable:
                raise
            # Runs started before the IAM lane cannot hear of a refusal: they retry, as they always did.
            raise ApplicationError(error.message, *error.details, type=error.type) from None
        if not outcome.readback.membership_verified or outcome.readback.shared_lookup_failed:
            await self._alert_without_waiting(request, outcome.readback, outcome.problem)
        await self._record(request.engagement_id, ledger_entry(request, outcome))
        return outcome.readback

    @activity.defn(name="converge_access")
    async def converge_access(self, request: AccessRequest) -> AccessOutcome:
        """Converge one identity on its plan (with what other engagements grant it) and read it back.
        Only the IAM (and, bounded, the shared-identity lock) is touched: the workflow records it after."""
        return await self._converge(request)

    @activity.defn(name="record_access")
    async def record_access(self, record: LedgerRecord) -> None:
        """Write what the IAM confirmed to the access ledger and, when anything changed, the audit log."""
        await self._record(record.engagement_id, record.entry)

    async def _converge(self, request: AccessRequest) -> AccessOutcome:
        iam = request.iam
        mine = Target(
            user_name=request.email,
            display_name=request.display_name,
            email=request.email,
            active=request.active,
            groups=frozenset(request.groups),
            scope=frozenset(request.scope),
            deprovision=iam.deprovision,
            expected_groups=None if request.expected_groups is None else frozenset(request.expected_groups),
            expected_active=request.expected_active,
        )
        directories = self._directories
        in_use = directories.directory(
            iam.scim_base_url,
            iam.token_ref,
            iam.dialect,
            allow_core_fallback=iam.discovery == "core_fallback",
            membership=iam.membership,
        )
        try:
            async with directories.lease(in_use) as directory:
                applied = await apply_identity_access(directory, self._shared, request.engagement_id, mine)
        except GroupNotFound as error:
            # The client's IAM owner must create the group; retrying picks it up once it exists.
            raise ApplicationError(str(error), type="GroupNotFound") from None
        except ScimRefused as error:  # retrying the same request can never succeed: a person must act
            raise ApplicationError(
                f"the IAM refused a change for {request.email}: {error}",
                {"iam": iam.scim_base_url, "engineer": request.email, "status": error.status},
                type=type(error).__name__,
                non_retryable=True,
            ) from None
        except ScimTransientError as error:
            raise ApplicationError(str(error), type="ScimUnavailable") from None
        result = applied.convergence
        if result.verified and (applied.groups != mine.groups or applied.active != mine.active):
            raise ApplicationError(
                f"IAM read-back for {request.email} does not confirm the plan: holds "
                f"{sorted(result.groups)} active={result.active}, expected {sorted(mine.groups)} active={mine.active}",
                type="ReadBackMismatch",
            )
        readback = EngineerAccessReadBack(
            email=request.email,
            scim_user_id=result.user_id,
            identity_active=applied.active,
            identity_exists=result.exists,
            groups=sorted(applied.groups),
            granted_groups=sorted(set(result.added) & mine.groups),
            removed_groups=sorted(result.removed),
            membership_verified=result.verified,
            unverified_reason=result.problem,
            held_for_other_engagements=sorted(applied.held_for_others),
            active_for_other_engagements=applied.active_for_others,
            shared_lookup_failed=applied.shared_lookup_failed,
        )
        evidence = {
            "operations": result.operations,
            "read_back_at": datetime.now().astimezone().isoformat(),
            "iam": iam.scim_base_url,
            "user_id": readback.scim_user_id,
            "active": result.active,
            "exists": result.exists,
            "groups": sorted(result.groups),
            "membership_verified": result.verified,
            "membership_read": result.method,
            "held_for_other_engagements": readback.held_for_other_engagements,
            "other_engagements": list(applied.others.engagements),
            "shared_lookup_failed": applied.shared_lookup_failed,
            "scim_requests": result.scim_requests,
            "scim_requests_by_kind": result.requests,
        }
        return AccessOutcome(
            readback=readback,
            granted=sorted(mine.groups),  # every group this engagement grants, even if another did first
            revoked=sorted(mine.scope - mine.groups),
            changed=bool(readback.granted_groups or readback.removed_groups or result.operations),
            evidence=evidence,
            problem=applied.problem or result.problem,
        )

    async def _record(self, engagement_id: str, entry: LedgerEffect) -> None:
        await self._store.record_access_change(
            engagement_id=engagement_id,
            engineer_email=entry.email,
            granted=entry.granted,
            revoked=entry.revoked,
            actor=entry.actor,
            at=entry.at,
            evidence=entry.evidence,
            audit=_entry(
                entry.at,
                entry.actor,
                "access_changed",
                {
                    "engineer": entry.email,
                    "reason": entry.reason,
                    "granted": entry.granted_now,
                    "revoked": entry.removed,
                    "identity_active": entry.identity_active,
                    "evidence": entry.evidence,
                },
                entry.id,
            )
            if entry.changed
            else None,
        )

    async def _alert_without_waiting(
        self, request: AccessRequest, readback: EngineerAccessReadBack, problem: str | None
    ) -> None:
        """Name what could not be proven; the IAM calls are done, and the alert store may be down."""
        if not readback.membership_verified:
            kind, message = "iam_unverified", f"the IAM cannot show {request.email}'s group membership"
        else:
            kind, message = (
                "shared_lookup_failed",
                (f"{request.email}'s access was taken away without knowing what other engagements grant: re-check"),
            )
        try:
            async with asyncio.timeout(ALERT_TIMEOUT_SECONDS):
                await self._alerts.raise_alert(
                    engagement_id=request.engagement_id,
                    alert_key=_event_key(f"/{kind}/{request.engagement_id}/{request.email}"),
                    at=request.at,
                    kind=kind,
                    message=f"{message} ({request.reason}): {problem}",
                    details={"engineer": request.email, "iam": request.iam.scim_base_url, "groups": readback.groups},
                )
        except Exception as error:  # the read-back carries the same facts for the workflow
            activity.logger.error("could not raise the %s alert for %s: %r", kind, person_ref(request.email), error)

    @activity.defn(name="raise_alert")
    async def raise_alert(self, alert: AlertInput) -> None:
        await self._alerts.raise_alert(
            engagement_id=alert.engagement_id,
            alert_key=_event_key(effect_id=alert.effect_id),
            at=alert.at,
            kind=alert.kind,
            message=alert.message,
            details=alert.details,
        )

    @activity.defn(name="save_document")
    async def save_document(self, request: DocumentInput) -> None:
        await self._store.save_document(
            request.engagement_id,
            request.record,
            audit=_entry(
                request.record.delivered_at,
                request.record.delivered_by,
                "document_delivered",
                {"document": request.record.name.value, "location": request.record.location},
                request.effect_id,
            ),
        )

    @activity.defn(name="save_session")
    async def save_session(self, request: SessionInput) -> None:
        await self._store.save_session(
            request.engagement_id,
            request.session,
            audit=_entry_for(request, f"session_{request.session.status}", request.session.model_dump(mode="json")),
        )

    @activity.defn(name="save_question")
    async def save_question(self, request: QuestionInput) -> None:
        await self._store.save_question(
            request.engagement_id,
            request.question,
            audit=_entry_for(
                request,
                "question_answered" if request.question.answer else "question_asked",
                {"question_id": request.question.question_id},
            ),
        )

    @activity.defn(name="record_effects")
    async def record_effects(self, batch: RecordBatch) -> RecordsWritten:
        """Write queued records in order, each as its own activity would (``activities.record_batch``)."""
        return await write_in_order(batch, self.record_writers())

    def record_writers(self) -> dict[type[Any], Callable[[Any], Awaitable[None]]]:
        """The activity each record input of a batch is written by (one for each of ``RECORD_INPUTS``)."""
        return {
            RecordEngagementInput: self.record_engagement,
            PhaseChange: self.record_phase,
            AuditInput: self.append_audit,
            EngineerRecord: self.save_engineer,
            LedgerRecord: self.record_access,
            DocumentInput: self.save_document,
            SessionInput: self.save_session,
            QuestionInput: self.save_question,
        }

    def all(self) -> list[Any]:
        return [
            self.record_engagement,
            self.record_phase,
            self.append_audit,
            self.save_engineer,
            self.apply_access,
            self.converge_access,
            self.record_access,
            self.raise_alert,
            self.save_document,
            self.save_session,
            self.save_question,
            self.record_effects,
        ]
