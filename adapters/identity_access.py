"""One engagement's access for one identity, converged in the IAM together with what every other
live engagement grants that identity (``shared_identities``), under the identity's lock.

A revocation never waits for the database: if it cannot say within seconds what the others grant,
this engagement's access is taken away fully anyway and the result says so (``shared_lookup_failed``).
A grant may wait: without the database it fails, and is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from sqlalchemy.exc import SQLAlchemyError

from adapters.iam_convergence import Convergence, Target, converge
from adapters.scim import ScimDirectory
from adapters.shared_identities import OtherGrants, SharedIdentities, SharedLookupUnavailable
from domain.vocabulary import person_ref

log = logging.getLogger(__name__)
NO_OTHERS = OtherGrants(frozenset(), False, ())


@dataclass
class AppliedAccess:
    convergence: Convergence
    mine: Target
    others: OtherGrants
    shared_lookup_failed: bool = False
    problem: str | None = None

    @property
    def groups(self) -> frozenset[str]:
        """What the IAM holds within scope on this engagement's behalf."""
        return self.convergence.groups & self.mine.groups

    @property
    def held_for_others(self) -> frozenset[str]:
        return (self.convergence.groups & self.others.groups) - self.mine.groups

    @property
    def active(self) -> bool:
        return self.convergence.active and self.mine.active

    @property
    def active_for_others(self) -> bool:
        return self.convergence.active and not self.mine.active and self.others.active


def takes_access_away(mine: Target) -> bool:
    """Whether the change may remove anything (then it must never wait for the database)."""
    if not mine.active or mine.expected_groups is None:
        return True
    return bool(mine.expected_groups - mine.groups)


def _union(mine: Target, others: OtherGrants) -> Target:
    return replace(mine, groups=mine.groups | (others.groups & mine.scope), active=mine.active or others.active)


async def apply_identity_access(
    directory: ScimDirectory, shared: SharedIdentities, engagement_id: str, mine: Target
) -> AppliedAccess:
    revoking = takes_access_away(mine)
    applied: AppliedAccess | None = None
    try:
        async with shared.claim(directory.base_url, mine.user_name, engagement_id) as claim:
            applied = AppliedAccess(await converge(directory, _union(mine, claim.others)), mine, claim.others)
            await claim.save(mine.groups, mine.active)
        return applied
    except SharedLookupUnavailable as error:
        if not revoking:
            raise  # a grant may wait for the database: the activity is retried
        log.error("revoking %s without the shared-identity lookup: %s", person_ref(mine.user_name), error)
        return AppliedAccess(await converge(directory, mine), mine, NO_OTHERS, True, str(error))
    except (SQLAlchemyError, OSError) as error:
        if applied is None or not revoking:
            raise
        # The IAM holds the union; only this engagement's row could not be written: re-check later.
        log.error("converged %s but could not record its shared-identity row: %r", person_ref(mine.user_name), error)
        applied.shared_lookup_failed, applied.problem = True, repr(error)
        return applied
