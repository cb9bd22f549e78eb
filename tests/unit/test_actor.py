"""The actor of a command: the connection's authenticated identity first, and how it was known."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.service import TLSConfig

from adapters.actor import ActorConflict, connection_identity, resolve_actor


def certificate(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def jwt(claims: dict[str, str]) -> str:
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJFUzI1NiJ9.{part}.c2ln"


def test_a_client_certificate_names_the_actor() -> None:
    config = {"tls": TLSConfig(client_cert=certificate("ops-oncall@firm.example"), client_private_key=b"k")}
    identity = connection_identity(config)
    assert identity == ("ops-oncall@firm.example", "tls_client_cert")
    assert resolve_actor(identity, None) == identity
    assert resolve_actor(identity, "ops-oncall@firm.example") == identity
    with pytest.raises(ActorConflict):
        resolve_actor(identity, "someone-else")


def test_an_api_key_names_its_subject_or_a_fingerprint_never_itself() -> None:
    assert connection_identity({"api_key": jwt({"sub": "svc-engagements"})}) == ("svc-engagements", "api_key")
    secret = "opaque-secret-key-value"
    name, source = connection_identity({"api_key": secret}) or ("", "")
    assert source == "api_key" and name.startswith("api-key:") and secret not in name


def test_without_an_identity_the_declared_name_or_the_os_user() -> None:
    assert connection_identity({"tls": False, "api_key": None}) is None
    assert resolve_actor(None, "fran") == ("fran", "declared")
    assert resolve_actor(None, None, os_user="root") == ("root", "os_user")
