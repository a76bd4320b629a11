"""A real auditseal HTTP service on 127.0.0.1 (uvicorn in a thread) over a tmp log."""

from __future__ import annotations

import base64
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from auditseal.alerts import AlertEngine
from auditseal.api import AuditService, ServeSettings, create_app
from auditseal.api.keys import ROLES, KeyStore
from auditseal.api.rule_catalog import alert_engine
from auditseal.api.service import WriterFactory
from auditseal.config import WriterConfig
from auditseal.log.local import LocalLog, init_log

_TLS = ssl.create_default_context()  # one context: building one per client costs ~50 ms
FAST_WRITER = WriterConfig(fsync=False, set_immutable=False, publish_interval_s=0.02)
FAST = ServeSettings(writer=FAST_WRITER, follow_interval_s=0.02)


@dataclass
class Api:
    """A running service: its URL, log, service object and one key per role."""

    url: str
    log: LocalLog
    vkey: str
    service: AuditService
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = None, **headers: str) -> httpx.Client:
        """An httpx client, authenticated as ``role`` when given."""
        if role is not None:
            headers["Authorization"] = f"Bearer {self.keys[role]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=_TLS)

    def wait_sealed(self, size: int | None = None, timeout_s: float = 5.0) -> None:
        """Wait until a checkpoint covers everything durable (or ``size``)."""
        target = self.service.writer.size if size is None else size
        deadline = time.monotonic() + timeout_s
        while self.service.checkpoint.size < target:
            assert time.monotonic() < deadline, "not sealed in time"
            time.sleep(0.01)

    def wait_indexed(self, timeout_s: float = 5.0) -> None:
        """Wait until the index holds everything durable now."""
        self.wait_sealed()
        target = self.service.writer.size
        deadline = time.monotonic() + timeout_s
        while self.service.indexed < target:
            assert time.monotonic() < deadline, "not indexed in time"
            time.sleep(0.01)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_server(tmp: Path, settings: ServeSettings = FAST,
               writer_factory: WriterFactory | None = None,
               service_class: type[AuditService] = AuditService) -> AbstractContextManager[Api]:
    """Start a service over a new log in ``tmp`` and serve it; stop it afterwards."""
    log, vkey = init_log(tmp / "log", "test.local/api")
    store = KeyStore(log.state)
    keys: dict[str, str] = {role: store.create(role, f"test-{role}")[1] for role in ROLES}
    return serve_log(log, vkey, keys, settings, writer_factory, service_class)


def serve_log(log: LocalLog, vkey: str, keys: dict[str, str], settings: ServeSettings = FAST,
              writer_factory: WriterFactory | None = None,
              service_class: type[AuditService] = AuditService) -> AbstractContextManager[Api]:
    """Serve an existing log (again: a restart keeps the log's state and keys)."""
    @contextmanager
    def running() -> Iterator[Api]:
        service = service_class(log, settings, writer_factory)
        app = create_app(service, settings)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "server thread died"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        try:
            yield Api(f"http://127.0.0.1:{port}", log, vkey, service, dict(keys))
        finally:
            server.should_exit = True
            thread.join(10)

    return running()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One service shared by a test module."""
    with run_server(tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.fixture
def make_server(tmp_path: Path) -> Callable[..., AbstractContextManager[Api]]:
    """Start a service with other settings: ``with make_server(max_request_bytes=...)``."""

    def make(writer_factory: WriterFactory | None = None,
             service_class: type[AuditService] = AuditService, **changes: Any
             ) -> AbstractContextManager[Api]:
        return run_server(tmp_path, replace(FAST, **changes), writer_factory, service_class)

    return make


def admin_records(api: Api, since: int = 0) -> list[dict[str, Any]]:
    """The ``admin`` records sealed from index ``since`` on, decoded, oldest first."""
    api.wait_sealed()
    found = []
    with api.client("reader") as client:
        for index in range(since, api.service.checkpoint.size):
            entry = client.get(f"/v1/entries/{index}").json()
            if entry["kind"] == "admin":
                found.append(orjson.loads(base64.b64decode(entry["event_b64"])))
    return found


class RecordingService(AuditService):
    """The service, counting the app's requests to rebuild the alert engine."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reloads = 0

    def reload_rules(self) -> None:
        self.reloads += 1
        super().reload_rules()


def engine_of(api: Api) -> AlertEngine:
    """The engine the follower builds from the log's files (rules, disabled, settings)."""
    settings = api.service.settings
    return alert_engine(api.log.state, settings.rules_paths, builtin=settings.builtin_rules,
                        suppress_window_s=settings.alert_suppress_window_s)
