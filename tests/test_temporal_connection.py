"""adapters.temporal_connection: the envconfig profile, the settings over it, and a one-line error
when Temporal cannot be reached."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from adapters.codec import EncryptionCodec
from adapters.temporal_connection import (
    TemporalConfigError,
    TemporalUnreachable,
    connect,
    connect_config,
    data_converter,
)
from settings import Settings
from tests.codec_peers import key
from tests.conftest import free_port
from tests.devserver import ROOT, address, dev_server, requires_temporal

__all__ = ["dev_server"]

PROFILES = """
[profile.default]
address = "default-host:7233"

[profile.prod]
address = "prod.example:7233"
namespace = "engagements-prod"
api_key = "from-the-file"

[profile.prod.tls]
server_name = "prod.example"
"""


@pytest.fixture(autouse=True)
def no_temporal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's TEMPORAL_* and PAYLOAD_* variables must not leak into these settings."""
    import os

    for name in list(os.environ):
        if name.startswith(("TEMPORAL_", "PAYLOAD_", "CODEC_")):
            monkeypatch.delenv(name)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES)
    return path


def test_without_a_profile_the_settings_defaults_apply() -> None:
    config = connect_config(settings(), environ={})
    assert config["target_host"] == "localhost:7233" and config["namespace"] == "default"
    assert "tls" not in config and "api_key" not in config


def test_a_profile_from_the_file_by_temporal_profile(config_file: Path) -> None:
    config = connect_config(settings(temporal_config_file=config_file), environ={"TEMPORAL_PROFILE": "prod"})
    assert config["target_host"] == "prod.example:7233"
    assert config["namespace"] == "engagements-prod"
    assert config["api_key"] == "from-the-file"
    tls = config["tls"]
    assert isinstance(tls, TLSConfig) and tls.domain == "prod.example"


def test_settings_that_were_set_override_the_profile_and_unset_ones_do_not(config_file: Path, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n")
    config = connect_config(
        settings(
            temporal_config_file=config_file,
            temporal_profile="prod",
            temporal_address="override:7233",
            temporal_tls_server_ca_cert_path=ca,
        ),
        environ={},
    )
    assert config["target_host"] == "override:7233"
    assert config["namespace"] == "engagements-prod", "not set in the settings: the profile's"
    tls = config["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == ca.read_bytes() and tls.domain == "prod.example"


def test_environment_variables_feed_the_profile() -> None:
    config = connect_config(settings(), environ={"TEMPORAL_ADDRESS": "env-host:7233", "TEMPORAL_NAMESPACE": "ns"})
    assert config["target_host"] == "env-host:7233" and config["namespace"] == "ns"


def test_an_api_key_turns_tls_on_unless_tls_is_turned_off() -> None:
    with_key = connect_config(settings(temporal_api_key="secret"), environ={})
    assert with_key["api_key"] == "secret" and with_key["tls"] is True
    plain = connect_config(settings(temporal_api_key="secret", temporal_tls=False), environ={})
    assert plain["tls"] is False


def test_a_missing_profile_or_tls_file_is_a_config_error(config_file: Path, tmp_path: Path) -> None:
    with pytest.raises(TemporalConfigError, match="nope"):
        connect_config(settings(temporal_config_file=config_file, temporal_profile="nope"), environ={})
    with pytest.raises(TemporalConfigError, match="TLS file"):
        connect_config(settings(temporal_tls_client_cert_path=tmp_path / "absent.pem"), environ={})


def test_data_converter_is_pydantic_and_encrypts_only_with_keys() -> None:
    assert data_converter(settings()) is pydantic_data_converter
    encrypted = data_converter(settings(payload_keys={"k1": key(1)}, payload_key_id="k1"))
    assert encrypted.payload_converter_class is pydantic_data_converter.payload_converter_class
    assert isinstance(encrypted.payload_codec, EncryptionCodec)
    assert isinstance(encrypted.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    with pytest.raises(TemporalConfigError, match="PAYLOAD_KEY_ID"):
        data_converter(settings(payload_key_id="k1"))


async def test_a_closed_port_is_a_one_line_error() -> None:
    target = f"127.0.0.1:{free_port()}"
    with pytest.raises(TemporalUnreachable) as raised:
        await connect(settings(temporal_address=target))
    assert str(raised.value).startswith(f"cannot reach Temporal at {target}: ")
    assert "\n" not in str(raised.value) and raised.value.__suppress_context__


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """Accepts TCP connections and never answers: a wrong port, or a proxy that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"127.0.0.1:{listener.getsockname()[1]}"


async def test_a_peer_that_never_answers_fails_within_the_connect_timeout(silent_listener: str) -> None:
    with pytest.raises(TemporalUnreachable, match=r"no answer within 0\.5 s"):
        await connect(settings(temporal_address=silent_listener, temporal_connect_timeout=timedelta(seconds=0.5)))


@requires_temporal
async def test_connects_to_the_dev_server_with_the_namespace(dev_server: WorkflowEnvironment) -> None:
    client = await connect(settings(temporal_address=address(dev_server)))
    assert client.namespace == "default"
    assert (await client.workflow_service.get_system_info(_system_info_request())).server_version


def _system_info_request() -> Any:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

    return GetSystemInfoRequest()


def test_codec_server_help_and_refusal_without_a_token(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    shown = subprocess.run(
        [sys.executable, "codec_server.py", "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "CODEC_AUTH_TOKEN" in shown.stdout
    refused = subprocess.run(
        [sys.executable, str(ROOT / "codec_server.py")],
        cwd=tmp_path,  # away from the project's .env
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == "CODEC_AUTH_TOKEN is not set: refusing to decrypt history for anyone who asks"
