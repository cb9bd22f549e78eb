"""What the encryption tests share: keys, a codec server on a loopback port, and a walk over every
payload a history (or any Temporal message) holds."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

from adapters.codec import EncryptionCodec, Keyring
from adapters.http_endpoint import in_background
from codec_server import codec_app
from tests.conftest import free_port

TOKEN = "test-codec-token"
UI_ORIGIN = "http://localhost:8233"


def key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


def keyring(active: str = "k1", **keys: str) -> Keyring:
    return Keyring.from_base64(keys or {"k1": key(1)}, active)


@dataclass
class CodecServer:
    url: str


@contextlib.asynccontextmanager
async def codec_server(
    ring: Keyring, max_body_bytes: int = 64 * 1024, origins: tuple[str, ...] = (UI_ORIGIN,)
) -> AsyncIterator[CodecServer]:
    """The real app under uvicorn on a free loopback port, for the block."""
    app = codec_app(EncryptionCodec(ring), TOKEN, origins, max_body_bytes)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    async with in_background(server):
        yield CodecServer(f"http://127.0.0.1:{port}")


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside a protobuf message (history events, failures, memos, ...)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            yield from payloads_in(value)
        else:  # a repeated field, or a map whose values are messages
            items = value.values() if field.message_type.GetOptions().map_entry else value
            for item in items:
                if isinstance(item, Message):
                    yield from payloads_in(item)
