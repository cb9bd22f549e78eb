"""Who sends a command: the identity the Temporal connection authenticates, else a declared name or
the operating system's user, and which of these it was (``Command.actor_source``).

A TLS client certificate names its holder (the subject's common name); an API key that is a JWT
names its subject (the server checks the key; the name is only read here). An opaque API key is
shown by a fingerprint, never by its value.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from temporalio.service import TLSConfig

from domain.commands import ActorSource


class ActorConflict(ValueError):
    """A declared actor that contradicts the identity the connection authenticates."""


def _certificate_subject(pem: bytes) -> str | None:
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else certificate.subject.rfc4514_string()
    text = value.decode() if isinstance(value, bytes) else value
    return text or None


def _api_key_subject(key: str) -> str:
    parts = key.split(".")
    if len(parts) == 3:
        try:
            padded = parts[1] + "=" * (-len(parts[1]) % 4)
            claims = json.loads(base64.urlsafe_b64decode(padded))
        except (ValueError, binascii.Error):
            claims = None
        if isinstance(claims, dict) and isinstance(claims.get("sub"), str) and claims["sub"].strip():
            return str(claims["sub"]).strip()
    return "api-key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def connection_identity(config: Mapping[str, Any]) -> tuple[str, ActorSource] | None:
    """The identity a Temporal connection config authenticates, if any (``connect_config``'s result)."""
    tls = config.get("tls")
    if isinstance(tls, TLSConfig) and tls.client_cert:
        subject = _certificate_subject(tls.client_cert)
        if subject:
            return subject, "tls_client_cert"
    api_key = config.get("api_key")
    if isinstance(api_key, str) and api_key:
        return _api_key_subject(api_key), "api_key"
    return None


def resolve_actor(
    identity: tuple[str, ActorSource] | None, declared: str | None, os_user: str | None = None
) -> tuple[str, ActorSource]:
    """The authenticated identity wins; a declared ``--actor`` may only repeat it; else the OS user."""
    if identity is not None:
        if declared and declared != identity[0]:
            raise ActorConflict(f"--actor {declared!r} is not the identity this connection authenticates")
        return identity
    if declared:
        return declared, "declared"
    return os_user or getpass.getuser(), "os_user"
