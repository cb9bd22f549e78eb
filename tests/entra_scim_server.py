"""A scim2-server that speaks Microsoft Entra ID's SCIM dialect, for the dialect tests.

Built from scim2-server's public parts with scim2-models' Entra policy: a PATCH ``remove`` may
carry the member to remove as its ``value`` (RFC 7644 forbids that; Entra sends it). Every tenant
is created on first use. Run: ``python -m tests.entra_scim_server PORT``.
"""

from __future__ import annotations

import secrets
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server

from scim2_models import ScimPolicy, ScimProvider
from scim2_server.applications.wsgi import TenantDispatcher
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

ENTRA = ScimPolicy(remove_value_as_filter=ScimPolicy.RemoveValue.apply)


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main(port: int) -> None:
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=load_default_service_provider_config(),
        policy=ENTRA,
    )
    service = ScimService(provider, secret=secrets.token_urlsafe(32))

    def tenant(name: str) -> BearerTokenApplication:
        return BearerTokenApplication(InMemoryStorage(), provider, service=service, bearer_tokens=[])

    with make_server("127.0.0.1", port, TenantDispatcher(tenant), server_class=ThreadingWSGIServer) as server:
        print(f"Serving Entra-dialect SCIM on http://127.0.0.1:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
