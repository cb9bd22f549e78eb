"""The engagement's activities: thin, named steps over the adapters.

Every activity is safe to retry: storage writes are upserts keyed by business keys, audit entries
are keyed by the activity attempt's identity, email is keyed per message, SCIM changes converge on
the desired state and are read back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.alerts import AlertStore
from adapters.db import EngagementStore
from adapters.scim import DirectoryPool, GroupNotFound
from domain.spec import EngagementSpec, IamEndpoint
from domain.state import DocumentRecord, EngineerAccessReadBack, EngineerState, HandoverSession, Question
from domain.vocabulary import Phase

# ---------------------------------------------------------------- activity payloads


class RecordEngagementInput(BaseModel):
    engagement_id: str
    spec: EngagementSpec
    at: datetime


class PhaseChange(BaseModel):
    engagement_id: str
    phase: Phase
    at: datetime
    actor: str
    reason: str
    nda_signed_at: datetime | None = None
    notice_given_at: datetime | None = None
    end_date: datetime | None = None
    closed_at: datetime | None = None


class AuditInput(BaseModel):
    engagement_id: str
    at: datetime
    actor: str
    action: str
    details: dict[str, Any] = Field(default_factory=dict)


class AlertInput(BaseModel):
    engagement_id: str
    at: datetime
    kind: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class EngineerRecord(BaseModel):
    engagement_id: str
    engineer: EngineerState
    at: datetime
    actor: str
    action: str


class AccessRequest(BaseModel):
    engagement_id: str
    iam: IamEndpoint
    email: str
    display_name: str
    active: bool
    """Whether the identity should be active."""
    groups: list[str]
    """Exactly the groups the identity should belong to, within ``scope``."""
    scope: list[str]
    """Every group the engagement's policy manages: memberships outside the plan are removed."""
    actor: str
    reason: str
    at: datetime


class DocumentInput(BaseModel):
    engagement_id: str
    record: DocumentRecord


class SessionInput(BaseModel):
    engagement_id: str
    session: HandoverSession
    actor: str
    at: datetime


class QuestionInput(BaseModel):
    engagement_id: str
    question: Question
    actor: str
    at: datetime


def _event_key(suffix: str = "") -> str:
    """Stable across retries of one activity, distinct across activities and runs."""
    info = activity.info()
    return f"{info.workflow_run_id}/{info.activity_id}{suffix}"


class EngagementActivities:
    def __init__(self, store: EngagementStore, directories: DirectoryPool, alerts: AlertStore) -> None:
        self._store = store
        self._directories = directories
        self._alerts = alerts

    async def _audit(
        self, engagement_id: str, at: datetime, actor: str, action: str, details: dict[str, Any], suffix: str = ""
    ) -> None:
        await self._store.append_audit(
            engagement_id=engagement_id,
            event_key=_event_key(suffix),
            at=at,
            actor=actor,
            action=action,
            details=details,
        )

    @activity.defn(name="record_engagement")
    async def record_engagement(self, request: RecordEngagementInput) -> None:
        await self._store.record_engagement(request.engagement_id, request.spec, request.at)
        await self._audit(
            request.engagement_id,
            request.at,
            "ops",
            "engagement_recorded",
            {
                "contract_id": request.spec.contract_id,
                "engagement_type": request.spec.engagement_type.value,
                "nda_reference": request.spec.agreement.nda_reference,
                "ip_assignment_clause": request.spec.agreement.ip_assignment_clause,
            },
        )

    @activity.defn(name="record_phase")
    async def record_phase(self, change: PhaseChange) -> None:
        timeline = {
            "nda_signed_at": change.nda_signed_at,
            "notice_given_at": change.notice_given_at,
            "end_date": change.end_date,
            "closed_at": change.closed_at,
        }
        await self._store.record_phase(
            change.engagement_id, change.phase, change.at, {k: v for k, v in timeline.items() if v}
        )
        await self._audit(
            change.engagement_id, change.at, change.actor, f"phase:{change.phase.value}", {"reason": change.reason}
        )

    @activity.defn(name="append_audit")
    async def append_audit(self, entry: AuditInput) -> None:
        await self._audit(entry.engagement_id, entry.at, entry.actor, entry.action, entry.details)

    @activity.defn(name="save_engineer")
    async def save_engineer(self, record: EngineerRecord) -> None:
        await self._store.save_engineer(record.engagement_id, record.engineer, record.at)
        await self._audit(
            record.engagement_id,
            record.at,
            record.actor,
            record.action,
            {
                "engineer": record.engineer.email,
                "role": record.engineer.spec.role,
                "production_access": record.engineer.spec.production_access,
                "check": record.engineer.check.value,
            },
        )

    @activity.defn(name="apply_access")
    async def apply_access(self, request: AccessRequest) -> EngineerAccessReadBack:
        """Converge one identity on its plan, read it back, and only then record it in the ledger."""
        directory = self._directories.directory(request.iam.scim_base_url, request.iam.token_ref, request.iam.dialect)
        scope = frozenset(request.scope)
        desired = frozenset(request.groups)
        operations: list[dict[str, str]] = []  # each SCIM request and its outcome, for the ledger
        try:
            before = await directory.read_identity(request.email, scope)
            user_id = before.user_id
            if request.active:
                user_id, created = await directory.ensure_user(
                    user_name=request.email, display_name=request.display_name, email=request.email
                )
                if not before.exists:
                    operations.append({"op": "create_user", "outcome": "created" if created else "adopted"})
                if not before.active:
                    await directory.set_active(user_id, True)
                    operations.append({"op": "activate", "outcome": "done"})
            if user_id is not None:
                for group in sorted(desired - before.groups):
                    await directory.add_member(group, user_id)
                    operations.append({"op": "add_member", "group": group, "outcome": "done"})
                for group in sorted(before.groups - desired):
                    outcome = await directory.remove_member(group, user_id)
                    operations.append({"op": "remove_member", "group": group, "outcome": outcome})
                if not request.active and before.exists:
                    if request.iam.deprovision == "delete":
                        deleted = await directory.delete_user(user_id)
                        operations.append({"op": "delete_user", "outcome": deleted})
                    elif before.active:
                        await directory.set_active(user_id, False)
                        operations.append({"op": "deactivate", "outcome": "done"})
            after = await directory.read_identity(request.email, scope)
        except GroupNotFound as error:
            # The client's IAM owner must create the group; retrying picks it up once it exists.
            raise ApplicationError(str(error), type="GroupNotFound") from None
        if after.groups != desired or (after.active != request.active):
            raise ApplicationError(
                f"IAM read-back for {request.email} does not confirm the plan: holds "
                f"{sorted(after.groups)} active={after.active}, expected {sorted(desired)} active={request.active}",
                type="ReadBackMismatch",
            )
        readback = EngineerAccessReadBack(
            email=request.email,
            scim_user_id=after.user_id or before.user_id,
            identity_active=after.active,
            identity_exists=after.exists,
            groups=sorted(after.groups),
            removed_groups=sorted(before.groups - desired),
        )
        evidence = {
            "operations": operations,
            "read_back_at": datetime.now().astimezone().isoformat(),
            "iam": request.iam.scim_base_url,
            "user_id": readback.scim_user_id,
            "active": after.active,
            "exists": after.exists,
            "groups": readback.groups,
        }
        await self._store.record_access_change(
            engagement_id=request.engagement_id,
            engineer_email=request.email,
            granted=sorted(desired - before.groups),
            revoked=sorted(scope - desired),
            actor=request.actor,
            at=request.at,
            evidence=evidence,
        )
        granted = sorted(desired - before.groups)
        readback.granted_groups = granted
        if granted or readback.removed_groups or before.active != after.active:
            await self._audit(
                request.engagement_id,
                request.at,
                request.actor,
                "access_changed",
                {
                    "engineer": request.email,
                    "reason": request.reason,
                    "granted": granted,
                    "revoked": readback.removed_groups,
                    "identity_active": after.active,
                    "evidence": evidence,
                },
            )
        return readback

    @activity.defn(name="raise_alert")
    async def raise_alert(self, alert: AlertInput) -> None:
        await self._alerts.raise_alert(
            engagement_id=alert.engagement_id,
            alert_key=_event_key(),
            at=alert.at,
            kind=alert.kind,
            message=alert.message,
            details=alert.details,
        )

    @activity.defn(name="save_document")
    async def save_document(self, request: DocumentInput) -> None:
        await self._store.save_document(request.engagement_id, request.record)
        await self._audit(
            request.engagement_id,
            request.record.delivered_at,
            request.record.delivered_by,
            "document_delivered",
            {"document": request.record.name.value, "location": request.record.location},
        )

    @activity.defn(name="save_session")
    async def save_session(self, request: SessionInput) -> None:
        await self._store.save_session(request.engagement_id, request.session)
        await self._audit(
            request.engagement_id,
            request.at,
            request.actor,
            f"session_{request.session.status}",
            request.session.model_dump(mode="json"),
        )

    @activity.defn(name="save_question")
    async def save_question(self, request: QuestionInput) -> None:
        await self._store.save_question(request.engagement_id, request.question)
        await self._audit(
            request.engagement_id,
            request.at,
            request.actor,
            "question_answered" if request.question.answer else "question_asked",
            {"question_id": request.question.question_id},
        )

    def all(self) -> list[Any]:
        return [
            self.record_engagement,
            self.record_phase,
            self.append_audit,
            self.save_engineer,
            self.apply_access,
            self.raise_alert,
            self.save_document,
            self.save_session,
            self.save_question,
        ]
