"""The demo's payload encryption: a key made once per machine, kept owner-only, used again by later runs."""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import SecretStr
from temporalio.api.common.v1 import Payload

from adapters.codec import EncryptionCodec, Keyring
from codec_server import local_encryption
from settings import Settings


async def test_a_key_is_made_once_kept_owner_only_and_opens_what_it_sealed(tmp_path: Path) -> None:
    path = tmp_path / "demo-secrets.json"
    first = local_encryption(Settings(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = local_encryption(Settings(), path)
    assert first.payload_key_table() == again.payload_key_table() and first.payload_key_id == "local"
    assert first.codec_auth_token is not None and again.codec_auth_token is not None
    assert first.codec_auth_token.get_secret_value() == again.codec_auth_token.get_secret_value()

    def codec(settings: Settings) -> EncryptionCodec:
        keyring = Keyring.load(settings.payload_key_table(), None, settings.payload_key_id)
        assert keyring is not None
        return EncryptionCodec(keyring)

    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"email": "alice@firm.example"}')
    [sealed] = await codec(first).encode([plain])
    assert b"alice" not in sealed.SerializeToString()
    assert await codec(again).decode([sealed]) == [plain]


def test_an_operators_codec_token_is_kept(tmp_path: Path) -> None:
    mine = Settings(codec_auth_token=SecretStr("operator-token"))
    settings = local_encryption(mine, tmp_path / "demo-secrets.json")
    assert settings.codec_auth_token is not None and settings.codec_auth_token.get_secret_value() == "operator-token"
