"""The real auditseal service on 127.0.0.1 for client tests: restartable on the same log.

``LiveServer`` runs the real app (``create_app`` over an ``AuditService``) with uvicorn in a
thread on a fixed port, so a test can stop it (an outage: connections are refused) and
start it again over the same log. ``FaultProxyDouble`` is a real HTTP proxy in front of it
that answers scripted failures (503 + Retry-After, 429, dropped connections) before
forwarding, as a load balancer in front of an overloaded service would, or forwards a
request and then loses the answer (as a timeout between proxy and client does).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from auditseal.api import AuditService, ServeSettings, create_app
from auditseal.api.keys import KeyStore
from auditseal.config import WriterConfig
from auditseal.core.entry import decode_entry
from auditseal.log.local import LocalLog, init_log

SETTINGS = ServeSettings(
    writer=WriterConfig(fsync=False, set_immutable=False, publish_interval_s=0.02),
    follow_interval_s=0.05, index=False, alerts=False, receipt_retry_after_s=0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """The real service over one log, started and stopped on demand on one port."""

    def __init__(self, root: Path) -> None:
        self.log: LocalLog
        self.log, self.vkey = init_log(root / "log", "test.local/client")
        store = KeyStore(self.log.state)
        self.ingest_key = store.create("ingest", "client-test")[1]
        self.auditor_key = store.create("auditor", "client-auditor")[1]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service: AuditService | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.service = AuditService(self.log, SETTINGS)
        server = uvicorn.Server(uvicorn.Config(create_app(self.service, SETTINGS),
                                               host="127.0.0.1", port=self.port,
                                               log_level="warning", lifespan="on"))
        self._server = server
        self._thread = threading.Thread(target=server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert self._thread.is_alive(), "server thread died"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)
        self._server = None
        self.service = None

    def events(self) -> list[dict[str, Any]]:
        """Every client event sealed so far (``kind: event``), in log order."""
        assert self.service is not None
        deadline = time.monotonic() + 5
        while self.service.checkpoint.size < self.service.writer.size:
            assert time.monotonic() < deadline, "not sealed in time"
            time.sleep(0.01)
        reader = self.service.reader()
        out = []
        for _, raw in reader.entries():
            entry = decode_entry(raw)
            if entry.header.kind == "event":
                out.append(orjson.loads(entry.event))
        return out


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path)
    server.start()
    yield server
    if server.service is not None:
        server.stop()


class FaultProxyDouble:
    """A real HTTP proxy on 127.0.0.1 that fails the first requests as scripted.

    ``faults`` is consumed one per request: an int is answered as that status (with
    ``Retry-After: retry_after``), ``"drop"`` closes the connection without an answer,
    ``"lose"`` forwards the request and then closes the connection instead of answering;
    when it is empty, requests are forwarded to the upstream unchanged. ``keys`` records
    the ``Idempotency-Key`` of every request (None when absent).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[int | str] = []
        self.retry_after = "0.05"
        self.seen: list[tuple[str, int]] = []  # (path, status answered)
        self.keys: list[str | None] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = double.faults.pop(0) if double.faults else None
                double.keys.append(self.headers.get("Idempotency-Key"))
                if fault == "drop":
                    double.seen.append((self.path, 0))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(fault, int):
                    payload = orjson.dumps({"error": {"code": "overloaded",
                                                      "message": "scripted fault"}})
                    self._answer(fault, payload, {"Retry-After": double.retry_after,
                                                  "Content-Type": "application/json"})
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in {"authorization", "content-type", "idempotency-key"}}
                response = httpx.request(self.command, double.upstream + self.path,
                                         content=body, headers=headers, timeout=10)
                if fault == "lose":
                    double.seen.append((self.path, -response.status_code))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                keep = {k: v for k, v in response.headers.items()
                        if k.lower() in {"content-type", "retry-after", "idempotent-replayed"}}
                self._answer(response.status_code, response.content, keep)

            def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                double.seen.append((self.path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(live: LiveServer) -> Iterator[FaultProxyDouble]:
    double = FaultProxyDouble(live.url)
    yield double
    double.close()
