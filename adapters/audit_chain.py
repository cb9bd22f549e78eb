"""The audit log's hash chain: each entry carries the hash of the one before it in its engagement.

``row_hash = sha256(prev_hash + "\\n" + canonical JSON of the entry)``, the first entry of an
engagement chaining to ``GENESIS``. Changing, removing or reordering any entry breaks every link
after it, which ``verify`` reports (the first broken one). The canonical JSON is what the database
gives back (``details`` as PostgreSQL's jsonb keeps it, the time in UTC to the microsecond), so an
entry hashed at insert verifies the same way years later. These functions must never change: a
different formula would break every chain already written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
"""What the first entry of every engagement chains to."""

CHAINED_FIELDS = ("engagement_id", "event_key", "at", "actor", "action", "details")


def canonical(entry: Mapping[Any, Any]) -> bytes:
    """One entry as canonical JSON: sorted keys, no spaces, UTF-8, the time as UTC ISO 8601."""
    at = entry["at"]
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError("an audit entry's time must be a datetime with a zone")
    document = {name: entry[name] for name in CHAINED_FIELDS}
    document["at"] = at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def link(prev_hash: str, entry: Mapping[Any, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(entry)).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    entry_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    engagement_id: str
    entries: int
    head: str
    """The last entry's hash: quote it elsewhere (a report, a ticket) and any later rewrite shows."""
    broken: BrokenLink | None

    @property
    def intact(self) -> bool:
        return self.broken is None

    def describe(self) -> str:
        if self.broken is None:
            return f"{self.engagement_id}: {self.entries} entries, chain intact, head {self.head}"
        return f"{self.engagement_id}: chain BROKEN at entry {self.broken.entry_id}: {self.broken.reason}"


def verify(engagement_id: str, rows: Iterable[Mapping[Any, Any]]) -> ChainReport:
    """Walk one engagement's entries in insertion order; report the first link that does not hold."""
    previous = GENESIS
    count = 0
    for row in rows:
        count += 1
        entry_id = int(row["entry_id"])
        if row.get("prev_hash") != previous:
            reason = "it does not chain to the entry before it (an entry was removed, added or reordered)"
            return ChainReport(engagement_id, count, previous, BrokenLink(entry_id, reason))
        if row.get("row_hash") != link(previous, row):
            reason = "its content does not match its hash (the entry was changed)"
            return ChainReport(engagement_id, count, previous, BrokenLink(entry_id, reason))
        previous = str(row["row_hash"])
    return ChainReport(engagement_id, count, previous, None)
