"""A valid spec as ops would write it: tests change one thing at a time (no server needed)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

ROLES: dict[str, Any] = {
    "developer": {"non_production": ["repo-write", "staging-deploy"], "production": ["prod-readonly"]},
    "sre": {"non_production": ["repo-read", "staging-admin"], "production": ["prod-admin"]},
    "analyst": {"non_production": ["ticketing"], "production": []},
}
ALL_GROUPS = sorted({g for r in ROLES.values() for g in r["non_production"] + r["production"]})


def spec_data(iam_url: str = "http://127.0.0.1:9/tenant", contract_id: str | None = None) -> dict[str, Any]:
    """A valid spec as ops would write it; tests change one thing at a time."""
    return copy.deepcopy(
        {
            "contract_id": contract_id or f"ACME-{uuid.uuid4().hex[:8]}",
            "client": {
                "name": "Acme Corp",
                "contacts": {
                    "signatory": {"name": "Sam Signer", "email": "sam@acme.example"},
                    "engagement_manager": {"name": "Erin Manager", "email": "erin@acme.example"},
                    "iam_owner": {"name": "Ian Owner", "email": "ian@acme.example"},
                    "incoming_team_lead": {"name": "Lee Incoming", "email": "lee@acme.example"},
                },
            },
            "firm_lead": {"name": "Fran Lead", "email": "fran@firm.example"},
            "engagement_type": "managed_outsourcing",
            "functions": ["software_development", "technical_operations"],
            "start_date": "2026-12-01",
            "agreement": {"nda_reference": "NDA-ACME-7", "ip_assignment_clause": "MSA section 9.2"},
            "engineers": [
                {
                    "name": "Alice Dev",
                    "email": "alice@firm.example",
                    "role": "developer",
                    "production_access": True,
                    "jurisdiction": "PT",
                },
                {
                    "name": "Bob Ops",
                    "email": "bob@firm.example",
                    "role": "sre",
                    "production_access": True,
                    "jurisdiction": "DE",
                },
                {"name": "Carol Analyst", "email": "carol@firm.example", "role": "analyst", "jurisdiction": "US"},
            ],
            "roles": ROLES,
            "iam": {"scim_base_url": iam_url},
        }
    )
