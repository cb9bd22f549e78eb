"""What one update's validation costs on a large engagement: ``domain.decisions.dry_run`` on a scratch
copy against the decision on a deep copy of the whole state (what every validator did before).

The state is an engagement in delivery after a burst: ``--engineers`` engineers and ``--queued``
effects waiting in the side-effect lane. Each command of the burst's mix (a newcomer, a role change,
a removal, an emergency revocation of one engineer) is validated ``--repeat`` times both ways; the
medians and their ratio are printed. Nothing is asserted about time.

    python -m bench.validation                   # 500 engineers, 1,000 queued effects
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from domain.commands import AddEngineer, ChangeRole, Command, RemoveEngineer, RevokeAccessNow
from domain.decisions import decide, dry_run
from domain.effects import AuditEffect
from domain.spec import EngagementSpec, EngineerSpec, parse_spec
from domain.state import EngagementState, EngineerState
from domain.vocabulary import CheckStatus, Phase
from tests.sample_spec import spec_data

NOW = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def large_state(spec: EngagementSpec, engineers: int, queued: int) -> EngagementState:
    people = [
        EngineerState(
            spec=EngineerSpec(name=f"Engineer {n}", email=f"e{n}@firm.example", role="analyst", jurisdiction="PT"),
            check=CheckStatus.NOT_REQUIRED,
            scim_user_id=f"user-{n}",
            identity_active=True,
            groups=["ticketing"],
        )
        for n in range(engineers)
    ]
    effects = [
        AuditEffect(id=n + 1, at=NOW, actor="burst", action="role_changed", details={"engineer": f"e{n}@firm.example"})
        for n in range(queued)
    ]
    return EngagementState(
        phase=Phase.DELIVERY,
        contract_signed_at=NOW - timedelta(days=200),
        nda_signed_at=NOW - timedelta(days=199),
        engineers=people,
        effects=list(effects),
        effects_queued=queued,
    )


def burst_mix(engineers: int) -> list[Command]:
    newcomer = EngineerSpec(name="Newcomer", email="new@firm.example", role="analyst", jurisdiction="PT")
    someone = f"e{engineers // 2}@firm.example"
    return [
        AddEngineer(actor="burst", engineer=newcomer),
        ChangeRole(actor="burst", email=someone, role="developer"),
        RemoveEngineer(actor="burst", email=someone),
        RevokeAccessNow(actor="ciso", email=someone, reason="lost laptop"),
    ]


def median_seconds(call: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(args: argparse.Namespace) -> dict[str, object]:
    spec = parse_spec(spec_data())
    state = large_state(spec, args.engineers, args.queued)
    results: dict[str, object] = {}
    for command in burst_mix(args.engineers):

        def deep_copy(command: Command = command) -> None:
            decide(spec, state.model_copy(deep=True), NOW, command, "engagement-x")

        def scratch(command: Command = command) -> None:
            dry_run(spec, state, NOW, command, "engagement-x")

        before = median_seconds(deep_copy, args.repeat)
        after = median_seconds(scratch, args.repeat)
        results[type(command).__name__] = {
            "deep_copy_ms": round(before * 1000, 3),
            "scratch_copy_ms": round(after * 1000, 3),
            "ratio": round(before / after, 1),
        }
    return {
        "what": "one update's validation (dry_run) vs a decision on a deep copy of the whole state",
        "engineers": args.engineers,
        "queued_effects": args.queued,
        "repeat": args.repeat,
        "commands": results,
        "load": os.getloadavg(),
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.validation", description=__doc__.splitlines()[0])
    parser.add_argument("--engineers", type=int, default=500, help="engineers on the engagement (default 500)")
    parser.add_argument("--queued", type=int, default=1000, help="effects waiting in the lane (default 1000)")
    parser.add_argument("--repeat", type=int, default=31, help="validations per command and way (default 31)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(main(parse_args(sys.argv[1:])), indent=2))
