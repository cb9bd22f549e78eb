"""The screening provider's activities: thin, named, idempotent steps over the provider port.

The provider adapter (its base URL and API key) and the jurisdiction table are the worker's: the
workflow names the provider and the jurisdiction, never a key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.checkr import ProviderRefused, ProviderUnavailable, ScreeningProvider
from adapters.screening_store import ScreeningStore
from domain.screening import (
    JurisdictionTable,
    OpenCheck,
    ProviderSnapshot,
    ReadCheck,
    ScreeningPackage,
    StartAdverseAction,
)

PROVIDER_NAME = "checkr"


@contextlib.contextmanager
def _provider_errors() -> Iterator[None]:
    """A refusal fails the activity for good; an unavailable provider is retried."""
    try:
        yield
    except ProviderRefused as error:
        raise ApplicationError(str(error), type="ProviderRefused", non_retryable=True) from None
    except ProviderUnavailable as error:
        raise ApplicationError(str(error), type="ProviderUnavailable") from None


class ScreeningActivities:
    def __init__(
        self, provider: ScreeningProvider | None, store: ScreeningStore, jurisdictions: JurisdictionTable
    ) -> None:
        self._provider = provider
        self._store = store
        self._jurisdictions = jurisdictions

    def _port(self) -> ScreeningProvider:
        if self._provider is None:
            # Retryable on purpose: the check waits until an operator configures the provider.
            raise ApplicationError(
                "no screening provider is configured on this worker (CHECKR_API_KEY)", type="ScreeningNotConfigured"
            )
        return self._provider

    @activity.defn(name="screening_package")
    async def screening_package(self, jurisdiction: str) -> ScreeningPackage:
        """The package (and its checks) the jurisdiction permits, from the worker's table."""
        return self._jurisdictions.package_for(jurisdiction)

    @activity.defn(name="screening_open")
    async def screening_open(self, request: OpenCheck) -> ProviderSnapshot:
        """Create the candidate and its invitation (or find those an earlier attempt created)."""
        with _provider_errors():
            snapshot = await self._port().open(request)
        await self._store.link(
            check_workflow_id=request.check_workflow_id,
            engagement_id=request.engagement_id,
            provider=PROVIDER_NAME,
            candidate_id=snapshot.candidate_id,
            invitation_id=snapshot.invitation_id,
        )
        return snapshot

    @activity.defn(name="screening_read")
    async def screening_read(self, request: ReadCheck) -> ProviderSnapshot:
        """Poll: the check as the provider has it now (the safety net for lost webhooks)."""
        with _provider_errors():
            return await self._port().read(request.snapshot)

    @activity.defn(name="screening_cancel_invitation")
    async def screening_cancel_invitation(self, request: ReadCheck) -> None:
        if request.snapshot.invitation_id is None:
            return
        with _provider_errors():
            await self._port().cancel_invitation(request.snapshot.invitation_id)

    @activity.defn(name="screening_start_adverse_action")
    async def screening_start_adverse_action(self, request: StartAdverseAction) -> str:
        """The pre-adverse action at the provider (it sends the engineer the report and their rights)."""
        with _provider_errors():
            return await self._port().start_adverse_action(request.report_id, request.post_notice_at)

    async def close(self) -> None:
        if self._provider is not None:
            await self._provider.close()

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.screening_package,
            self.screening_open,
            self.screening_read,
            self.screening_cancel_invitation,
            self.screening_start_adverse_action,
        ]
