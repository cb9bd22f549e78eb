"""The one way every entry point (worker, CLI, webhook, demo) connects to Temporal.

Where to connect comes from Temporal's own client configuration (``temporalio.envconfig``): a TOML
file of profiles (``TEMPORAL_CONFIG_FILE``, else the CLI's default location), the profile named by
``TEMPORAL_PROFILE``, and the ``TEMPORAL_*`` environment (address, namespace, API key, TLS). The
project's settings (environment or ``.env``) override the profile field by field, but only those
that were actually set: an unset setting never hides what the profile says. How payloads travel is
the project's choice alone: the pydantic data converter, plus the AES-GCM codec and encoded failure
messages when payload keys are configured.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, ClientConnectConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from adapters.codec import EncryptionCodec, Keyring, PayloadKeyError
from settings import Settings


class TemporalConnectionError(Exception):
    """Temporal cannot be used from here; the message is one line meant for a person."""


class TemporalConfigError(TemporalConnectionError):
    """The connection settings themselves are wrong (missing profile, unreadable certificate, bad keys)."""


class TemporalUnreachable(TemporalConnectionError):
    """Nothing usable answered at the address within the connect timeout."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"cannot reach Temporal at {address}: {reason}")
        self.address = address
        self.reason = reason


def converter_for(keyring: Keyring | None) -> DataConverter:
    """The pydantic data converter; with a keyring, every payload is encrypted and failures' messages
    and stack traces travel inside an (encrypted) payload instead of in clear."""
    if keyring is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(settings: Settings) -> DataConverter:
    """The data converter the settings call for (synchronous: the replayer and tests use it too)."""
    try:
        keyring = Keyring.load(settings.payload_key_table(), settings.payload_keys_file, settings.payload_key_id)
    except PayloadKeyError as error:
        raise TemporalConfigError(str(error)) from None
    return converter_for(keyring)


def _with_tls_overrides(settings: Settings, tls: ClientConfigTLS | None) -> ClientConfigTLS | None:
    given = settings.model_fields_set
    changes: dict[str, object] = {}
    if "temporal_tls" in given and settings.temporal_tls is not None:
        changes["disabled"] = not settings.temporal_tls
    paths = {
        "temporal_tls_server_ca_cert_path": "server_root_ca_cert",
        "temporal_tls_client_cert_path": "client_cert",
        "temporal_tls_client_key_path": "client_private_key",
    }
    for setting, field in paths.items():
        if setting in given and getattr(settings, setting) is not None:
            changes[field] = getattr(settings, setting)
    if "temporal_tls_server_name" in given and settings.temporal_tls_server_name is not None:
        changes["server_name"] = settings.temporal_tls_server_name
    if not changes:
        return tls
    return dataclasses.replace(tls or ClientConfigTLS(), **changes)  # type: ignore[arg-type]


def connect_config(settings: Settings, environ: Mapping[str, str] | None = None) -> ClientConnectConfig:
    """``Client.connect`` arguments: the envconfig profile, then the settings that were set over it.

    ``environ`` stands in for the process environment (tests); the profile file is read here, and so
    are the TLS certificate files it or the settings name.
    """
    env = dict(os.environ if environ is None else environ)
    given = settings.model_fields_set
    try:
        profile = ClientConfigProfile.load(
            profile=settings.temporal_profile,
            config_source=settings.temporal_config_file,
            override_env_vars=env,
        )
    except (RuntimeError, OSError) as error:  # the bridge's ConfigError is a RuntimeError
        raise TemporalConfigError(f"Temporal client config: {error}") from None
    overrides: dict[str, object] = {}
    if "temporal_address" in given or not profile.address:
        overrides["address"] = settings.temporal_address
    if "temporal_namespace" in given or profile.namespace is None:
        overrides["namespace"] = settings.temporal_namespace
    if settings.temporal_api_key is not None and "temporal_api_key" in given:
        overrides["api_key"] = settings.temporal_api_key.get_secret_value()
    overrides["tls"] = _with_tls_overrides(settings, profile.tls)
    profile = dataclasses.replace(profile, **overrides)  # type: ignore[arg-type]
    try:
        return profile.to_client_connect_config()
    except OSError as error:
        raise TemporalConfigError(f"cannot read a TLS file for Temporal: {error}") from None


def _short_reason(error: BaseException) -> str:
    """The OS's words from the bridge's nested transport error, else its first line, bounded."""
    text = str(error)
    found = re.search(r'message: "([^"]+)"', text)
    if found:
        return found.group(1)
    return text.splitlines()[0][:200] if text else type(error).__name__


async def connect(
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A connected client, or a TemporalConnectionError whose message is one line for a person.

    ``runtime`` (metrics) and ``interceptors`` (tracing) are the worker's telemetry (adapters/telemetry.py)."""
    config = connect_config(settings, environ)
    converter = data_converter(settings)
    address = config.get("target_host", settings.temporal_address)
    timeout = settings.temporal_connect_timeout
    try:
        # connect_timeout bounds the TCP connect; wait_for bounds the whole handshake, so a peer
        # that accepts and never speaks (a wrong port, a stuck proxy) also fails in time.
        return await asyncio.wait_for(
            Client.connect(
                **config,
                data_converter=converter,
                connect_timeout=timeout,
                runtime=runtime,
                interceptors=interceptors,
            ),
            timeout.total_seconds(),
        )
    except TimeoutError:
        raise TemporalUnreachable(address, f"no answer within {timeout.total_seconds():g} s") from None
    except RPCError as error:
        raise TemporalUnreachable(address, f"refused: {error.message}") from None
    except RuntimeError as error:
        raise TemporalUnreachable(address, _short_reason(error)) from None
