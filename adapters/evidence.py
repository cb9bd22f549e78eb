"""Reading the engagement's records for auditors: the audit chain verified, and the evidence pack's data.

Read-only: it never writes (the pack and the verification are built from what the workflow recorded).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import get_args

from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.audit_chain import ChainReport, verify
from adapters.db_schema import access_grants, alerts, audit_log, email_events, email_outbox, engagements, engineers
from domain.evidence import (
    AlertRow,
    AuditRow,
    ChainVerdict,
    EmailRow,
    EngagementRecords,
    EngineerRow,
    EvidencePack,
    GrantRow,
)
from domain.vocabulary import MILESTONE_COLUMNS


async def engagement_ids_in_audit(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(select(audit_log.c.engagement_id).distinct().order_by(audit_log.c.engagement_id))
        return [str(r) for r in result.scalars()]


async def chain_reports(engine: AsyncEngine, engagement_ids: Sequence[str] | None = None) -> list[ChainReport]:
    """Each engagement's chain walked in insertion order (every engagement in the log when None)."""
    ids = list(engagement_ids) if engagement_ids is not None else await engagement_ids_in_audit(engine)
    reports = []
    async with engine.connect() as conn:
        for engagement_id in ids:
            result = await conn.execute(
                select(audit_log).where(audit_log.c.engagement_id == engagement_id).order_by(audit_log.c.entry_id)
            )
            reports.append(verify(engagement_id, (row._mapping for row in result)))
    return reports


# ---------------------------------------------------------------- the evidence pack's records


async def engagement_records(engine: AsyncEngine, engagement_id: str) -> EngagementRecords:
    """Everything the pack reports on one engagement, read in one snapshot; LookupError if unknown."""
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        row = (await conn.execute(select(engagements).where(engagements.c.engagement_id == engagement_id))).first()
        if row is None:
            raise LookupError(f"no engagement {engagement_id} in the database")
        people = await conn.execute(select(engineers).where(engineers.c.engagement_id == engagement_id))
        ledger = await conn.execute(
            select(access_grants)
            .where(access_grants.c.engagement_id == engagement_id)
            .order_by(access_grants.c.grant_id)
        )
        audit = await conn.execute(
            select(audit_log).where(audit_log.c.engagement_id == engagement_id).order_by(audit_log.c.entry_id)
        )
        audit_rows = [r._mapping for r in audit]
        outbox = await conn.execute(
            select(email_outbox)
            .where(email_outbox.c.engagement_id == engagement_id)
            .order_by(email_outbox.c.created_at, email_outbox.c.message_key)
        )
        outbox_rows = [r._mapping for r in outbox]
        keys = [r["message_key"] for r in outbox_rows]
        events: dict[str, list[str]] = {}
        if keys:
            found = await conn.execute(
                select(email_events.c.message_key, email_events.c.event, email_events.c.occurred_at)
                .where(email_events.c.message_key.in_(keys))
                .order_by(email_events.c.occurred_at)
            )
            for key, event, at in found:
                events.setdefault(key, []).append(f"{event} {at.isoformat()}")
        raised = await conn.execute(
            select(alerts).where(alerts.c.engagement_id == engagement_id).order_by(alerts.c.alert_id)
        )
        alert_rows = [r._mapping for r in raised]
    report = verify(engagement_id, audit_rows)
    return EngagementRecords(
        **{k: row._mapping[k] for k in ("engagement_id", "contract_id", "client_name", "engagement_type", "phase")},
        spec=row.spec,
        **{k: row._mapping[k] for k in MILESTONE_COLUMNS},
        engineers=[EngineerRow.model_validate(dict(r._mapping)) for r in people],
        grants=[GrantRow.model_validate(dict(r._mapping)) for r in ledger],
        audit=[AuditRow.model_validate(dict(r)) for r in audit_rows],
        emails=[EmailRow.model_validate({**r, "events": events.get(r["message_key"], [])}) for r in outbox_rows],
        alerts=[AlertRow.model_validate(dict(r)) for r in alert_rows],
        chain=ChainVerdict(
            entries=report.entries,
            intact=report.intact,
            head=report.head,
            broken_at=report.broken.entry_id if report.broken else None,
            reason=report.broken.reason if report.broken else None,
        ),
    )


async def engagements_with_revocations_since(engine: AsyncEngine, since: datetime) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(access_grants.c.engagement_id)
            .where(access_grants.c.revoked_at >= since)
            .distinct()
            .order_by(access_grants.c.engagement_id)
        )
        return [str(r) for r in result.scalars()]


# ---------------------------------------------------------------- writing the pack


class UnsafeOutput(ValueError):
    """An --out that is not a new or empty folder."""


def prepare_folder(out: Path) -> Path:
    """A new or empty folder to write into; a file, or a folder that already holds files, is refused."""
    if out.exists() and not out.is_dir():
        raise UnsafeOutput(f"{out} is a file: give a folder for the evidence pack")
    if out.is_dir() and any(out.iterdir()):
        raise UnsafeOutput(f"{out} is not empty: give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def safe_name(name: str) -> str:
    """A file or folder name from an identifier: letters, digits, ``.``, ``_``, ``-``; never hidden or empty."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:120]
    return cleaned or "_"


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text_value = json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else str(value or "")
    return "'" + text_value if text_value.startswith(_FORMULA) else text_value


def write_csv(path: Path, model: type[BaseModel], rows: Sequence[BaseModel]) -> None:
    """A header row of the model's fields (an empty table too: "no alerts" reads as such), then the rows."""
    with path.open("x", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        fields = list(model.model_fields)
        writer.writerow(fields)
        for row in rows:
            data = row.model_dump(mode="json")
            writer.writerow([_cell(data[f]) for f in fields])


CSV_TABLES = {
    "timeline": "timeline",
    "grants": "grants",
    "revocations": "revocations",
    "access_reviews": "reviews",
    "certifications": "certifications",
    "emails": "emails",
    "alerts": "alerts",
    "audit_log": "audit",
}
"""Each CSV of the pack and the field of ``EvidencePack`` it tabulates."""


def write_pack(folder: Path, pack: EvidencePack, html: str) -> list[Path]:
    """pack.json, one CSV per table and report.html, in a folder prepared by ``prepare_folder``."""
    written = [folder / "pack.json", folder / "report.html"]
    for path, content in zip(written, (pack.model_dump_json(indent=2), html), strict=True):
        with path.open("x", encoding="utf-8") as handle:
            handle.write(content)
    for name, field in CSV_TABLES.items():
        path = folder / f"{name}.csv"
        [model] = get_args(EvidencePack.model_fields[field].annotation)  # list[Row]: one row model
        write_csv(path, model, getattr(pack, field))
        written.append(path)
    return written
