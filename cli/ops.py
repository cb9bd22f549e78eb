"""What admins and auditors ask the database: ``verify-audit``, ``alerts`` and ``evidence``.

These read the records the workflows wrote (DATABASE_URL); the one write is an alert's
acknowledgement, which is audited in the same transaction. ``starter.py`` adds these parsers and
hands the parsed arguments here.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.actor import connection_identity, resolve_actor
from adapters.alerts import AlertNotOpen, AlertStore
from adapters.db import create_engine, start_embedded_postgres
from adapters.evidence import (
    UnsafeOutput,
    chain_reports,
    engagement_records,
    engagements_with_revocations_since,
    prepare_folder,
    safe_name,
    write_csv,
    write_pack,
)
from adapters.temporal_connection import TemporalConnectionError, connect_config
from cli.args import _duration
from domain.evidence import EvidencePack, RevocationEvidence, build_pack, revoked_since
from emails.evidence_report import evidence_report, leavers_report
from settings import Settings

PREFIX = "engagement-"
DEFAULT_SLA = timedelta(minutes=15)


class OpsError(Exception):
    """A refusal to show the person, without a traceback."""


def engagement_id(value: str) -> str:
    return value if value.startswith(PREFIX) else PREFIX + value


def _engine(settings: Settings) -> AsyncEngine:
    return create_engine(settings.database_url or start_embedded_postgres(settings.run_dir / "pgdata"))


def _actor(settings: Settings, declared: str) -> tuple[str, str]:
    try:
        identity = connection_identity(connect_config(settings))
    except TemporalConnectionError:
        identity = None
    os_user = getpass.getuser()
    return resolve_actor(identity, None if declared == os_user else declared, os_user)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    try:
        if args.command == "verify-audit":
            return await verify_audit(engine, args.engagement)
        if args.command == "alerts":
            return await alerts(engine, args, settings)
        return await evidence(engine, args)
    finally:
        await engine.dispose()


async def verify_audit(engine: AsyncEngine, engagement: str | None) -> int:
    reports = await chain_reports(engine, [engagement_id(engagement)] if engagement else None)
    if not reports or (engagement and reports[0].entries == 0):
        raise OpsError(f"no audit entries for {engagement_id(engagement) if engagement else 'any engagement'}")
    for report in reports:
        print(report.describe())
    return 0 if all(r.intact for r in reports) else 1


async def alerts(engine: AsyncEngine, args: argparse.Namespace, settings: Settings) -> int:
    store = AlertStore(engine)
    if args.ack is not None:
        if not args.reason or not args.reason.strip():
            raise OpsError("--ack needs --reason: say why the alert is acknowledged")
        by, source = _actor(settings, args.actor)
        try:
            row = await store.acknowledge(
                args.ack, by=by, source=source, reason=args.reason.strip(), at=datetime.now(UTC)
            )
        except AlertNotOpen as error:
            raise OpsError(str(error)) from None
        print(f"alert {row.alert_id} ({row.kind}) acknowledged by {by} ({source.replace('_', ' ')})")
        return 0
    rows = await store.open_alerts(engagement_id(args.engagement) if args.engagement else None)
    if not rows:
        print("no open alerts")
    for row in rows:
        print(
            f"{row.alert_id:>6}  {row.raised_at:%Y-%m-%d %H:%M} UTC  {row.severity:<8} {row.engagement_id}  {row.kind}"
        )
        print(f"        {row.message}")
    return 0


def _sla(args: argparse.Namespace, spec: dict[str, Any]) -> timedelta:
    if args.revocation_sla is not None:
        return args.revocation_sla  # type: ignore[no-any-return]
    value = spec.get("revocation_alert_after")
    return _duration(value) if isinstance(value, str) else DEFAULT_SLA  # type: ignore[return-value]


async def _pack(engine: AsyncEngine, args: argparse.Namespace, engagement: str) -> EvidencePack:
    try:
        records = await engagement_records(engine, engagement)
    except LookupError as error:
        raise OpsError(str(error)) from None
    return build_pack(records, _sla(args, records.spec))


async def evidence(engine: AsyncEngine, args: argparse.Namespace) -> int:
    if (args.engagement is None) == (args.leavers_since is None):
        raise OpsError("give either an engagement or --leavers-since DATE")
    try:
        folder = prepare_folder(args.out)
    except UnsafeOutput as error:
        raise OpsError(str(error)) from None
    if args.engagement:
        packs = [await _pack(engine, args, engagement_id(args.engagement))]
        written = write_pack(folder, packs[0], evidence_report(packs[0]))
    else:
        since = datetime.combine(args.leavers_since, time(0, 0), tzinfo=UTC)
        packs = [await _pack(engine, args, e) for e in await engagements_with_revocations_since(engine, since)]
        chosen: dict[str, list[RevocationEvidence]] = {p.engagement_id: revoked_since(p, since.date()) for p in packs}
        written = []
        for pack in packs:
            sub = folder / safe_name(pack.engagement_id)
            sub.mkdir()
            written += write_pack(sub, pack, evidence_report(pack))
        leavers = folder / "leavers.html"
        leavers.write_text(leavers_report(since.date().isoformat(), packs, chosen), encoding="utf-8")
        write_csv(folder / "leavers.csv", RevocationEvidence, [r for p in packs for r in chosen[p.engagement_id]])
        written += [leavers, folder / "leavers.csv"]
    broken = [p for p in packs if not p.chain.intact]
    print(f"wrote {len(written)} files to {folder}")
    if broken:
        print("WARNING: the audit chain is broken for " + ", ".join(p.engagement_id for p in broken))
        return 1
    return 0
