"""Payload encryption: every payload the workers and the CLI hand to Temporal is sealed with AES-GCM
before it leaves the process, so the Temporal server (and anyone who reads its database or its
history exports) sees key ids and ciphertext, never an engineer's email or a client's contract.

Keys have ids so they can rotate: a payload is sealed with the active key and names that key in its
metadata; it is opened with whichever key it names, so histories sealed with an older key keep
replaying as long as that key stays in the keyring. A payload without the encrypted encoding (a
history recorded before encryption was turned on) passes through unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCRYPTED_ENCODING = b"binary/encrypted"
"""The ``encoding`` metadata of a sealed payload (the name Temporal's samples use)."""
KEY_ID_METADATA = "encryption-key-id"
"""The metadata entry that names the key a payload was sealed with."""
NONCE_BYTES = 12
AES_KEY_SIZES = (16, 24, 32)


class PayloadCodecError(Exception):
    """A payload that cannot be opened; the message says why, without the payload's content."""


class UnknownKeyId(PayloadCodecError):
    """The payload names a key this keyring does not hold (retired too early, or another system's)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"payload was encrypted with key id {key_id!r}, which is not in PAYLOAD_KEYS")
        self.key_id = key_id


class TamperedPayload(PayloadCodecError):
    """The ciphertext, its nonce or its key id do not authenticate: changed, truncated or forged."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"payload encrypted with key id {key_id!r} failed authentication (altered or truncated)")
        self.key_id = key_id


class PayloadKeyError(ValueError):
    """The configured keys are unusable (bad base64, wrong length, no active key)."""


@dataclass(frozen=True)
class Keyring:
    """AES keys by id, and the id of the one new payloads are sealed with."""

    keys: Mapping[str, bytes]
    active_key_id: str

    def __post_init__(self) -> None:
        if self.active_key_id not in self.keys:
            raise PayloadKeyError(
                f"PAYLOAD_KEY_ID {self.active_key_id!r} is not among the keys: {', '.join(sorted(self.keys))}"
            )
        for key_id, key in self.keys.items():
            if not key_id:
                raise PayloadKeyError("a payload key id may not be empty")
            if len(key) not in AES_KEY_SIZES:
                raise PayloadKeyError(f"payload key {key_id!r} is {len(key)} bytes; AES-GCM needs 16, 24 or 32")

    @classmethod
    def from_base64(cls, encoded: Mapping[str, str], active_key_id: str | None) -> Keyring:
        """Keys as ``{key_id: base64 key}`` (what PAYLOAD_KEYS holds)."""
        keys: dict[str, bytes] = {}
        for key_id, value in encoded.items():
            try:
                keys[key_id] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeyError(f"payload key {key_id!r} is not valid base64") from None
        if active_key_id is None:
            if len(keys) != 1:
                raise PayloadKeyError("set PAYLOAD_KEY_ID to the id of the key new payloads are encrypted with")
            active_key_id = next(iter(keys))
        return cls(keys, active_key_id)

    @classmethod
    def load(cls, inline: Mapping[str, str], file: Path | None, active_key_id: str | None) -> Keyring | None:
        """The keys of PAYLOAD_KEYS and PAYLOAD_KEYS_FILE together; None when neither holds any."""
        table = dict(inline)
        if file is not None:
            try:
                loaded = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise PayloadKeyError(f"cannot read PAYLOAD_KEYS_FILE {file}: {error}") from None
            if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
                raise PayloadKeyError(f"PAYLOAD_KEYS_FILE {file} must hold a JSON object of key id -> base64 key")
            table.update(loaded)
        if not table:
            if active_key_id is not None:
                raise PayloadKeyError(f"PAYLOAD_KEY_ID is {active_key_id!r} but no PAYLOAD_KEYS are configured")
            return None
        return cls.from_base64(table, active_key_id)


def new_key() -> str:
    """A fresh 256-bit key, base64, ready for PAYLOAD_KEYS."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


class EncryptionCodec(PayloadCodec):
    """AES-GCM over the whole serialized payload (metadata included, so even the encoding and the
    message type are hidden). The key id is bound as associated data: moving a payload under
    another key id fails authentication instead of decrypting with the wrong key."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def active_key_id(self) -> str:
        return self._keyring.active_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        key_id = self._keyring.active_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode("utf-8"))
        return Payload(
            metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id.encode("utf-8")},
            data=nonce + sealed,
        )

    def open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
            return payload  # recorded before encryption was on, or never encoded: leave it as it is
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyId(key_id)
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise TamperedPayload(key_id) from None
        opened = Payload()
        opened.ParseFromString(plain)
        return opened
