"""The engagement as admins find it in the Temporal UI: its current details (markdown, no personal
data) and the search attributes that `list` filters on, upserted only when one of them changes; and
(``status-memo`` runs) its status view in the run's memo, which `status` reads without a replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from adapters import search_attributes as sa
    from domain.spec import EngagementSpec
    from domain.state import EngagementState
    from domain.views import STATUS_MEMO, current_details, needs_attention, next_deadline, pack_status, status_view


class AdminView:
    def __init__(
        self,
        spec: EngagementSpec,
        state: EngagementState,
        *,
        publish: bool,
        status_memo: bool,
        full: Callable[[], bool],
    ) -> None:
        self._spec = spec
        self._state = state
        self._publish = publish
        """Started with its search attributes (the CLI sets them, so the namespace has them): keep them current."""
        self._published: tuple[Any, ...] = ()
        self._status_memo = status_memo
        self._memo_holds: str | None = None
        """The status view (JSON) the memo holds since this run's last upsert; None before the first."""
        self._memo_cleared = False
        """The view outgrew the memo's bound and its key was removed."""
        self._full = full
        """The run is full, on its way to continue as new: it upserts nothing more (the next run will)."""

    def publish_status(self) -> None:
        """The status view into the memo (packed, then encrypted as every payload), when it changed.
        Called where the engagement is shown (each turn of the main loop, an effect parked, an alert),
        as the main loop or a side-effect lane goes to sleep, and as the run completes, so the memo is
        current whenever nothing is in flight. A view
        past the bound removes the key instead: Temporal fails a workflow whose memo is too large."""
        if not self._status_memo or self._full():
            return
        view = status_view(self._spec, self._state)
        holds = view.model_dump_json()
        if holds == self._memo_holds:
            return
        self._memo_holds = holds
        packed = pack_status(holds)
        if packed is not None or not self._memo_cleared:  # too large: the key goes (`status` asks live)
            workflow.upsert_memo({STATUS_MEMO: packed})
        self._memo_cleared = packed is None

    def show(self) -> None:
        spec, state = self._spec, self._state
        workflow.set_current_details(current_details(spec, state))
        self.publish_status()
        deadline = next_deadline(spec, state)
        values = (state.phase, state.end_date, deadline, needs_attention(state))
        if not self._publish or values == self._published:
            return
        self._published = values
        workflow.upsert_search_attributes(
            [
                sa.ENGAGEMENT_PHASE.value_set(state.phase.value),
                sa.ENGAGEMENT_CLIENT.value_set(spec.client.name),
                sa.ENGAGEMENT_TYPE.value_set(spec.engagement_type.value),
                sa.CONTRACT_ID.value_set(spec.contract_id),
                sa.END_DATE.value_set(state.end_date) if state.end_date else sa.END_DATE.value_unset(),
                sa.NEXT_DEADLINE.value_set(deadline.at) if deadline else sa.NEXT_DEADLINE.value_unset(),
                sa.NEXT_DEADLINE_LABEL.value_set(deadline.label) if deadline else sa.NEXT_DEADLINE_LABEL.value_unset(),
                sa.NEEDS_ATTENTION.value_set(needs_attention(state)),
            ]
        )
