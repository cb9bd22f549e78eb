"""The search attributes admins find engagements by, in one place: the typed keys the workflow
upserts, and their registration on a namespace (idempotent).

Search attributes are stored in clear by the Temporal server (they are not payloads, so the codec
never sees them): none of them may ever carry personal data. The client's name and the contract id
are business identifiers; people's names and emails never go here.

The keys are importable from a workflow (this module imports nothing but ``temporalio.common`` at
load time); registering talks to the operator service and is imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

if TYPE_CHECKING:
    from temporalio.client import Client

ENGAGEMENT_PHASE: Final = SearchAttributeKey.for_keyword("EngagementPhase")
"""The phase's value (``awaiting_nda``, ``delivery``, ..., ``closed``, ``cancelled``)."""
ENGAGEMENT_CLIENT: Final = SearchAttributeKey.for_keyword("EngagementClient")
"""The client company's name, as in the spec."""
ENGAGEMENT_TYPE: Final = SearchAttributeKey.for_keyword("EngagementType")
"""``outsourcing`` or ``staff_augmentation``."""
CONTRACT_ID: Final = SearchAttributeKey.for_keyword("ContractId")
END_DATE: Final = SearchAttributeKey.for_datetime("EndDate")
"""The agreed end date once notice is given; absent before."""
NEXT_DEADLINE: Final = SearchAttributeKey.for_datetime("NextDeadline")
"""The next moment the workflow will act on its own (NDA deadline, end date, transition end, ...)."""
NEXT_DEADLINE_LABEL: Final = SearchAttributeKey.for_keyword("NextDeadlineLabel")
"""What happens at NextDeadline, as a short label (``nda_deadline``, ``end_date``, ...)."""
NEEDS_ATTENTION: Final = SearchAttributeKey.for_bool("NeedsAttention")
"""True while a person must act: a parked effect, an unconfirmed revocation, an unverifiable IAM."""

ALL: Final[tuple[SearchAttributeKey[Any], ...]] = (
    ENGAGEMENT_PHASE,
    ENGAGEMENT_CLIENT,
    ENGAGEMENT_TYPE,
    CONTRACT_ID,
    END_DATE,
    NEXT_DEADLINE,
    NEXT_DEADLINE_LABEL,
    NEEDS_ATTENTION,
)
"""Every key, in the order they are registered and shown."""


class SearchAttributeConflict(Exception):
    """A search attribute of ours is registered on the namespace with another type."""


def _type_name(value_type: SearchAttributeIndexedValueType) -> str:
    return value_type.name.capitalize()  # KEYWORD -> Keyword, as the Temporal CLI writes it


def declared(keys: Sequence[SearchAttributeKey[Any]] = ALL) -> dict[str, str]:
    """Name -> type (``Keyword``, ``Datetime``, ``Bool``) of every key: what must be registered."""
    return {key.name: _type_name(key.indexed_value_type) for key in keys}


async def register(
    client: Client, namespace: str, keys: Sequence[SearchAttributeKey[Any]] = ALL
) -> tuple[list[str], list[str]]:
    """Add the keys the namespace lacks; returns (added, already registered).

    Idempotent: what is registered with the right type is left alone; one registered with another
    type raises ``SearchAttributeConflict`` and nothing is added.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    existing = {**dict(listed.system_attributes), **dict(listed.custom_attributes)}
    wanted = {key.name: key.indexed_value_type for key in keys}
    conflicts = [
        f"{name} is {_type_name(SearchAttributeIndexedValueType(existing[name]))}, not {_type_name(value_type)}"
        for name, value_type in wanted.items()
        if name in existing and existing[name] != int(value_type)
    ]
    if conflicts:
        raise SearchAttributeConflict(f"namespace {namespace}: " + "; ".join(conflicts))
    missing = {name: value_type for name, value_type in wanted.items() if name not in existing}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={name: IndexedValueType.ValueType(int(t)) for name, t in missing.items()},
            )
        )
    return sorted(missing), sorted(set(wanted) - set(missing))
