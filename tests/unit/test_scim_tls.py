"""Every SCIM client of a process shares one TLS context, and it still verifies the IAM's certificate."""

from __future__ import annotations

import ssl

from adapters.scim_http import ScimHttp, tls_context


async def test_clients_of_different_iam_endpoints_share_one_verifying_tls_context() -> None:
    first, second = ScimHttp("https://iam.one.example/scim/v2"), ScimHttp("https://iam.two.example/scim/v2")
    try:
        contexts = {id(http.client()._transport._pool._ssl_context) for http in (first, second)}  # type: ignore[attr-defined]
        assert contexts == {id(tls_context())}
        assert tls_context().verify_mode is ssl.CERT_REQUIRED and tls_context().check_hostname
    finally:
        for http in (first, second):
            await http.client().aclose()
