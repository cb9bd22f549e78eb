"""Payload encryption: the codec itself, the codec server over HTTP, and an engagement-shaped
workflow on the real Temporal dev server whose raw history holds no personal data in clear."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest, GetWorkflowExecutionHistoryResponse
from temporalio.client import Client, WorkflowHistory
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from adapters.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    Keyring,
    PayloadKeyError,
    TamperedPayload,
    UnknownKeyId,
)
from adapters.temporal_connection import connect, converter_for
from codec_server import Sessions
from settings import Settings
from tests.codec_peers import TOKEN, UI_ORIGIN, codec_server, key, keyring, payloads_in
from tests.devserver import address, dev_server, requires_temporal
from worker import SANDBOX, WORKFLOWS

__all__ = ["dev_server"]  # the module-scoped fixture, imported for the end-to-end test

EMAIL = "alice@firm.example"
HISTORIES = Path(__file__).resolve().parent / "histories"


def plain(data: bytes, encoding: bytes = b"json/plain") -> Payload:
    return Payload(metadata={"encoding": encoding}, data=data)


# --- the codec ---------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=2048), encoding=st.binary(min_size=1, max_size=40))
async def test_round_trip_of_any_payload(data: bytes, encoding: bytes) -> None:
    codec = EncryptionCodec(keyring())
    original = plain(data, encoding)
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert [original] == await codec.decode([sealed])


async def test_sealed_payload_hides_data_and_metadata() -> None:
    codec = EncryptionCodec(keyring())
    original = Payload(metadata={"encoding": b"json/plain", "messageType": b"EngineerSpec"}, data=b'"' + EMAIL.encode())
    [sealed] = await codec.encode([original])
    raw = sealed.SerializeToString()
    assert EMAIL.encode() not in raw and b"EngineerSpec" not in raw
    [again] = await codec.encode([original])
    assert again.data != sealed.data, "a fresh nonce for every payload"


async def test_rotation_new_payloads_use_the_active_key_and_old_ones_still_open() -> None:
    old = EncryptionCodec(keyring("2025", **{"2025": key(1)}))
    [sealed_by_old] = await old.encode([plain(b'"before rotation"')])
    rotated = EncryptionCodec(keyring("2026", **{"2025": key(1), "2026": key(2)}))
    [sealed_by_new] = await rotated.encode([plain(b'"after rotation"')])
    assert sealed_by_new.metadata[KEY_ID_METADATA] == b"2026"
    opened = await rotated.decode([sealed_by_old, sealed_by_new])
    assert [p.data for p in opened] == [b'"before rotation"', b'"after rotation"']


async def test_unknown_key_id_is_a_clear_error() -> None:
    [sealed] = await EncryptionCodec(keyring("retired", retired=key(7))).encode([plain(b"1")])
    with pytest.raises(UnknownKeyId, match="'retired'") as raised:
        await EncryptionCodec(keyring()).decode([sealed])
    assert raised.value.key_id == "retired"


async def test_altered_ciphertext_or_key_id_fails_authentication() -> None:
    codec = EncryptionCodec(keyring("a", a=key(1), b=key(1)))  # same key bytes: only the AAD differs
    [sealed] = await codec.encode([plain(b'"x"')])
    flipped = Payload()
    flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    moved = Payload()
    moved.CopyFrom(sealed)
    moved.metadata[KEY_ID_METADATA] = b"b"
    for bad in (flipped, moved):
        with pytest.raises(TamperedPayload):
            await codec.decode([bad])


async def test_payloads_recorded_before_encryption_pass_through() -> None:
    before = [plain(b'{"a": 1}'), plain(b"", b"binary/null"), Payload()]
    assert await EncryptionCodec(keyring()).decode(before) == before


def test_key_configuration_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(PayloadKeyError, match="not valid base64"):
        Keyring.from_base64({"k": "%%%"}, "k")
    with pytest.raises(PayloadKeyError, match="16, 24 or 32"):
        Keyring.from_base64({"k": "c2hvcnQ="}, "k")
    with pytest.raises(PayloadKeyError, match="'k9' is not among the keys"):
        Keyring.from_base64({"k1": key(1)}, "k9")
    with pytest.raises(PayloadKeyError, match="set PAYLOAD_KEY_ID"):
        Keyring.from_base64({"k1": key(1), "k2": key(2)}, None)
    assert Keyring.load({}, None, None) is None
    file = tmp_path / "keys.json"
    file.write_text(json.dumps({"k2": key(2)}))
    loaded = Keyring.load({"k1": key(1)}, file, "k2")
    assert loaded is not None and set(loaded.keys) == {"k1", "k2"} and loaded.active_key_id == "k2"


# --- the codec server over HTTP --------------------------------------------------------------


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "X-Namespace": "default"}


async def test_codec_server_encodes_and_decodes_for_the_token_holder() -> None:
    async with codec_server(keyring()) as server, httpx.AsyncClient(base_url=server.url) as http:
        original = plain(json.dumps({"email": EMAIL}).encode())
        encoded = await http.post("/encode", content=body(original), headers=auth())
        assert encoded.status_code == 200, encoded.text
        assert EMAIL not in encoded.text
        decoded = await http.post("/default/decode", content=encoded.text, headers=auth())
        assert decoded.status_code == 200, decoded.text
        assert list(json_format.Parse(decoded.text, Payloads()).payloads) == [original]


async def test_codec_server_refuses_without_the_right_token() -> None:
    async with codec_server(keyring()) as server, httpx.AsyncClient(base_url=server.url) as http:
        missing = await http.post("/decode", content=body(plain(b"1")), headers={"Content-Type": "application/json"})
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await http.post("/decode", content=body(plain(b"1")), headers=auth("guess"))
        assert wrong.status_code == 403
        assert "Traceback" not in missing.text + wrong.text


async def test_codec_server_cors_for_the_ui_origin_only() -> None:
    preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST"}
    async with codec_server(keyring()) as server, httpx.AsyncClient(base_url=server.url) as http:
        allowed = await http.options("/decode", headers=preflight)
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
        assert "authorization" in allowed.headers["access-control-allow-headers"]
        assert "x-namespace" in allowed.headers["access-control-allow-headers"]
        other = await http.options("/decode", headers={**preflight, "Origin": "http://evil.example"})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        from_ui = await http.post("/decode", content=body(plain(b"1")), headers={**auth(), "Origin": UI_ORIGIN})
        assert from_ui.status_code == 200 and from_ui.headers["access-control-allow-origin"] == UI_ORIGIN
        from_other = await http.post(
            "/decode", content=body(plain(b"1")), headers={**auth(), "Origin": "http://evil.example"}
        )
        assert from_other.status_code == 403


def session_of(signed_in: httpx.Response) -> str:
    cookie = signed_in.headers["set-cookie"]
    assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=None", "Path=/")), cookie
    assert TOKEN not in cookie, "the cookie never carries the token itself"
    return cookie.split(";", 1)[0]


async def test_an_admin_signs_in_once_and_the_browser_session_decodes_from_the_ui_origin_only() -> None:
    async with codec_server(keyring()) as server, httpx.AsyncClient(base_url=server.url) as http:
        form = await http.get("/login")
        assert form.status_code == 200 and 'type="password"' in form.text and "<script" not in form.text
        wrong = await http.post("/login", data={"token": "guess"})
        assert wrong.status_code == 403 and "set-cookie" not in wrong.headers
        signed_in = await http.post("/login", data={"token": TOKEN})
        assert signed_in.status_code == 200, signed_in.text
        session = {"Cookie": session_of(signed_in), "Content-Type": "application/json"}

        from_ui = await http.post("/decode", content=body(plain(b"1")), headers={**session, "Origin": UI_ORIGIN})
        assert from_ui.status_code == 200, from_ui.text
        assert from_ui.headers["access-control-allow-credentials"] == "true"
        elsewhere = await http.post(
            "/decode", content=body(plain(b"1")), headers={**session, "Origin": "http://evil.example"}
        )
        assert elsewhere.status_code == 403
        no_origin = await http.post("/decode", content=body(plain(b"1")), headers=session)
        assert no_origin.status_code == 401, "a session is for the UI's pages, not for scripts"
        name, _, value = session["Cookie"].partition("=")
        forged = {**session, "Origin": UI_ORIGIN, "Cookie": f"{name}=9999999999.{value.split('.')[1]}"}
        assert (await http.post("/decode", content=body(plain(b"1")), headers=forged)).status_code == 401
        huge = await http.post("/login", content=b"token=" + b"x" * 10_000)
        assert huge.status_code == 413


def test_a_session_ends_at_its_expiry_and_with_a_new_token() -> None:
    now = datetime(2027, 1, 4, 9, tzinfo=UTC)
    sessions = Sessions(TOKEN, timedelta(hours=8), lambda: now)
    cookie = sessions.issue()
    assert sessions.valid(cookie)
    assert not Sessions("rotated-token", timedelta(hours=8), lambda: now).valid(cookie)
    later = Sessions(TOKEN, timedelta(hours=8), lambda: now + timedelta(hours=8, seconds=1))
    assert not later.valid(cookie)
    for bad in (None, "", "x", f"{cookie}0", "1." + cookie.split(".")[1], "-1." + cookie.split(".")[1]):
        assert not sessions.valid(bad)


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[1, 2]", b'{"payloads": "x"}', b'{"payloads": [{"data": "***"}]}', b"\xff\xfe"],
    ids=["text", "array", "wrong-type", "bad-base64", "not-utf8"],
)
async def test_codec_server_answers_400_to_malformed_bodies(content: bytes) -> None:
    async with codec_server(keyring()) as server, httpx.AsyncClient(base_url=server.url) as http:
        response = await http.post("/decode", content=content, headers=auth())
        assert response.status_code == 400, response.text
        assert "payloads" in response.json()["error"] and "Traceback" not in response.text


async def test_codec_server_limits_body_size_and_reports_undecodable_payloads() -> None:
    [foreign] = await EncryptionCodec(keyring("other", other=key(9))).encode([plain(b"1")])
    async with codec_server(keyring(), max_body_bytes=1024) as server, httpx.AsyncClient(base_url=server.url) as http:
        big = await http.post("/decode", content=body(plain(b"x" * 2048)), headers=auth())
        assert big.status_code == 413
        unknown = await http.post("/decode", content=body(foreign), headers=auth())
        assert unknown.status_code == 422 and "'other'" in unknown.json()["error"]


# --- saved histories still replay with the codec on ------------------------------------------


@pytest.mark.parametrize("name", ["engagement_full_lifecycle_v2", "background_check_1_v2"])
async def test_saved_plain_history_replays_with_encryption_on(name: str) -> None:
    saved = json.loads((HISTORIES / f"{name}.json").read_text())
    history = WorkflowHistory.from_json(saved["workflow_id"], saved["history"])
    replayer = Replayer(workflows=WORKFLOWS, data_converter=converter_for(keyring()), workflow_runner=SANDBOX)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


# --- end to end: a client from adapters.temporal_connection on the real dev server -------------


class Onboard(BaseModel):
    name: str
    email: str


class Onboarded(BaseModel):
    greeting: str
    refusal: str


@activity.defn(name="test_codec_grant")
async def grant(engineer: Onboard) -> str:
    return f"granted to {engineer.email}"


@activity.defn(name="test_codec_refuse")
async def refuse(engineer: Onboard) -> str:
    # Like a driver's error that quotes an SQL parameter: the failure message holds personal data.
    raise ApplicationError(f"duplicate key (email)=({engineer.email})", non_retryable=True)


@workflow.defn(name="TestCodecOnboarding")
class Onboarding:
    @workflow.run
    async def run(self, engineer: Onboard) -> Onboarded:
        timeout = timedelta(seconds=30)
        workflow.upsert_memo({"engineer": engineer.email})  # as the engagement keeps its status view
        greeting = await workflow.execute_activity(grant, engineer, start_to_close_timeout=timeout)
        try:
            await workflow.execute_activity(
                refuse, engineer, start_to_close_timeout=timeout, retry_policy=RetryPolicy(maximum_attempts=1)
            )
            refusal = "none"
        except ActivityError as error:
            refusal = str(error.cause)
        return Onboarded(greeting=greeting, refusal=refusal)


async def onboard_alice(target: str, settings: Settings) -> tuple[Onboarded, GetWorkflowExecutionHistoryResponse]:
    """Run the onboarding through a client from adapters.temporal_connection; return its result and
    the history exactly as the server holds it, fetched by a client without any codec."""
    client = await connect(settings)
    queue = f"codec-{uuid.uuid4().hex[:8]}"
    workflow_id = f"engagement-codec-{uuid.uuid4().hex[:8]}"
    runner = UnsandboxedWorkflowRunner()
    async with Worker(
        client, task_queue=queue, workflows=[Onboarding], activities=[grant, refuse], workflow_runner=runner
    ):
        result = await client.execute_workflow(
            Onboarding.run,
            Onboard(name="Alice Dev", email=EMAIL),
            id=workflow_id,
            task_queue=queue,
            memo={"lead": EMAIL},
            static_summary=f"onboarding {EMAIL}",
        )
    raw_client = await Client.connect(target)  # no codec: what the server, its database and the UI hold
    history = await raw_client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(namespace="default", execution=WorkflowExecution(workflow_id=workflow_id))
    )
    return result, history


@requires_temporal
async def test_without_keys_the_email_is_in_clear(dev_server: WorkflowEnvironment) -> None:
    """The control: the check below would see the email if it were there."""
    target = address(dev_server)
    _, response = await onboard_alice(target, Settings(_env_file=None, temporal_address=target))
    assert EMAIL.encode() in response.SerializeToString()


@requires_temporal
async def test_history_on_the_server_holds_no_email_in_clear(dev_server: WorkflowEnvironment) -> None:
    target = address(dev_server)
    settings = Settings(_env_file=None, temporal_address=target, payload_keys={"k1": key(1)}, payload_key_id="k1")
    result, response = await onboard_alice(target, settings)
    assert result.greeting == f"granted to {EMAIL}" and EMAIL in result.refusal  # the codec client reads it

    raw = response.SerializeToString()
    assert len(response.history.events) > 10 and EMAIL.encode() not in raw
    assert b"duplicate key" not in raw, "failure messages travel encrypted"
    payloads = list(payloads_in(response.history))
    assert payloads and all(p.metadata["encoding"] == ENCRYPTED_ENCODING for p in payloads)

    async with codec_server(keyring(), max_body_bytes=1024 * 1024) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            decoded = await http.post("/decode", content=body(*payloads), headers=auth())
    assert decoded.status_code == 200, decoded.text
    opened = b"".join(p.data for p in json_format.Parse(decoded.text, Payloads()).payloads)
    assert EMAIL.encode() in opened and b"duplicate key (email)" in opened

    # The encrypted history replays with the codec-enabled converter.
    history = WorkflowHistory("engagement-codec", list(response.history.events))  # the id is not replayed
    replayer = Replayer(
        workflows=[Onboarding], data_converter=converter_for(keyring()), workflow_runner=UnsandboxedWorkflowRunner()
    )
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=True)).replay_failure is None
