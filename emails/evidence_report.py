"""The evidence pack as one readable, self-contained HTML page (no script, no external resource).

Every value is escaped: the records hold text people typed (reasons, names, questions).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta

from domain.evidence import EvidencePack, RevocationEvidence

_STYLE = (
    "body{font-family:Arial,Helvetica,sans-serif;color:#1f2933;max-width:1100px;margin:24px auto;padding:0 12px}"
    "table{border-collapse:collapse;width:100%;margin:0 0 24px 0;font-size:14px}"
    "th,td{border:1px solid #d1d5db;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f4f6}.bad{color:#b91c1c;font-weight:bold}.ok{color:#047857;font-weight:bold}"
    "code{font-size:12px;word-break:break-all}"
)


def _e(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return html.escape(value.isoformat(timespec="seconds"))
    return html.escape(str(value))


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    if not rows:
        return f"<h2>{html.escape(caption)}</h2>\n<p>{html.escape(empty)}</p>\n"
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<h2>{html.escape(caption)}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def _duration(seconds: float | None) -> str:
    return "not recorded" if seconds is None else str(timedelta(seconds=round(seconds)))


def _sla(r: RevocationEvidence) -> str:
    if r.within_sla is None:
        return '<span class="bad">unknown</span>'
    return '<span class="ok">yes</span>' if r.within_sla else '<span class="bad">NO</span>'


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n"
    )


def revocations_table(revocations: Sequence[RevocationEvidence], sla_seconds: float, caption: str) -> str:
    return _table(
        f"{caption} (SLA {_duration(sla_seconds)})",
        ["engineer", "group", "trigger", "asked at", "IAM confirmed at", "time to revoke", "within SLA"],
        [
            [
                f"{_e(r.engineer)}<br>{_e(r.email)}",
                _e(r.group),
                _e(r.trigger),
                _e(r.triggered_at),
                _e(r.confirmed_at),
                _e(_duration(r.seconds_to_revoke)),
                _sla(r),
            ]
            for r in revocations
        ],
        "No access was revoked.",
    )


def chain_paragraph(pack: EvidencePack) -> str:
    chain = pack.chain
    if chain.intact:
        return (
            f'<p>Audit log: <span class="ok">hash chain intact</span> over {chain.entries} entries; '
            f"head <code>{_e(chain.head)}</code>.</p>\n"
        )
    return (
        f'<p>Audit log: <span class="bad">hash chain BROKEN at entry {_e(chain.broken_at)}</span>: '
        f"{_e(chain.reason)}. Entries from there on cannot be relied upon.</p>\n"
    )


def evidence_report(pack: EvidencePack) -> str:
    facts = [
        ("Engagement", pack.engagement_id),
        ("Contract", pack.contract_id),
        ("Client", pack.client),
        ("Type", pack.engagement_type),
        ("Phase", pack.phase),
        *((label, moment) for label, moment in pack.milestones.items()),
    ]
    summary = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in facts)
    body = [
        f"<table><tbody>{summary}</tbody></table>\n",
        chain_paragraph(pack),
        _table(
            "Access granted",
            ["engineer", "group", "basis", "background check", "asked by", "asked at", "IAM confirmed at"],
            [
                [
                    f"{_e(g.engineer)}<br>{_e(g.email)}",
                    _e(g.group),
                    _e(g.basis),
                    _e(g.check),
                    _e(g.requested_by),
                    _e(g.requested_at),
                    _e(g.confirmed_at),
                ]
                for g in pack.grants
            ],
            "No access was granted.",
        ),
        revocations_table(pack.revocations, pack.revocation_sla_seconds, "Access revoked"),
        _table(
            "Access reviews",
            ["at", "engineers reviewed", "corrections"],
            [[_e(r.at), _e(r.engineers), "<br>".join(_e(c) for c in r.corrections) or "none"] for r in pack.reviews],
            "No access review has run yet.",
        ),
        _table(
            "Access certifications",
            ["round", "engineer", "decision", "by", "at"],
            [
                [_e(c.round), _e(c.engineer), _e(c.decision), _e(c.decided_by), _e(c.decided_at)]
                for c in pack.certifications
            ],
            "No access certification was answered or decided.",
        ),
        _table(
            "Emails",
            ["kind", "to", "subject", "state", "sent at", "delivery events"],
            [
                [
                    _e(m.kind.replace("_", " ")),
                    _e(m.recipient),
                    _e(m.subject),
                    _e(m.state),
                    _e(m.sent_at),
                    "<br>".join(_e(v) for v in m.events) or "none yet",
                ]
                for m in pack.emails
            ],
            "No email was sent.",
        ),
        _table(
            "Admin alerts",
            ["raised at", "kind", "message", "acknowledged"],
            [
                [
                    _e(a.raised_at),
                    _e(a.kind),
                    _e(a.message),
                    f"{_e(a.acknowledged_at)} by {_e(a.acknowledged_by)}: {_e(a.acknowledgement)}"
                    if a.acknowledged_at
                    else '<span class="bad">open</span>',
                ]
                for a in pack.alerts
            ],
            "No alert was raised.",
        ),
        _table(
            "Timeline (the audit log)",
            ["#", "at", "by", "what", "hash"],
            [
                [_e(a.entry_id), _e(a.at), _e(a.actor), _e(t.what), f"<code>{_e(a.row_hash[:16])}…</code>"]
                for a, t in zip(pack.audit, pack.timeline, strict=True)
            ],
            "The audit log is empty.",
        ),
    ]
    return _page(f"Evidence pack: {pack.client}, contract {pack.contract_id}", "".join(body))


def leavers_report(since: str, packs: Sequence[EvidencePack], revocations: dict[str, list[RevocationEvidence]]) -> str:
    """Every revocation since a date, per engagement, with each engagement's chain verdict."""
    body = [f"<p>Access revoked on or after {_e(since)}, across {len(packs)} engagement(s).</p>\n"]
    for pack in packs:
        body.append(f"<h2>{_e(pack.client)}: contract {_e(pack.contract_id)} ({_e(pack.engagement_id)})</h2>\n")
        body.append(chain_paragraph(pack))
        body.append(revocations_table(revocations[pack.engagement_id], pack.revocation_sla_seconds, "Revocations"))
    return _page(f"Leavers since {since}", "".join(body))
