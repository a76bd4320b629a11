"""``auditseal keys`` and ``auditseal serve`` as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from auditseal.log.local import latest_checkpoint, load_log
from tests.api.conftest import free_port
from tests.conftest import run_cli


def test_keys_create_list_revoke(log_dir: tuple[Path, str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = log_dir
    assert run_cli("keys", "create", "--role", "ingest", "--log", root) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("as_")
    assert "\n" not in token
    assert run_cli("keys", "create", "--role", "reader", "--log", root, "--name", "ui",
                   "--expires-in-days", "3", "--json") == 0
    created = orjson.loads(capsys.readouterr().out)
    assert (created["role"], created["name"], created["state"]) == ("reader", "ui", "active")
    assert created["expires"] is not None
    assert run_cli("keys", "revoke", created["id"], "--log", root) == 0
    capsys.readouterr()
    assert run_cli("keys", "list", "--log", root, "--json") == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [k["state"] for k in listed] == ["active", "revoked"]
    assert token.split("_")[2] not in (root / ".auditseal" / "api-keys.json").read_text()
    assert run_cli("keys", "revoke", "000000000000", "--log", root) == 5
    with pytest.raises(SystemExit) as usage:
        run_cli("keys", "create", "--role", "root", "--log", root)
    assert usage.value.code == 2


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, proc.communicate()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not come up"
        time.sleep(0.1)


def test_serve_creates_the_default_log_serves_and_stops_cleanly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("AUDITSEAL_LOG", None)
    root = tmp_path / "data" / "auditseal" / "log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditseal", "serve", "--host", "127.0.0.1", "--port",
         str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_up(url, proc)
        assert run_cli("keys", "create", "--role", "ingest", "--log", root) == 0
        token = capsys.readouterr().out.strip()
        answer = httpx.post(f"{url}/v1/events", content=b'{"a":1}\n{"b":2}\n', headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})
        assert answer.status_code == 200
        assert answer.json()["accepted"] == 2
        ui = httpx.get(f"{url}/", follow_redirects=False)
        if (Path(__file__).parents[2] / "src" / "auditseal" / "web").is_dir():
            assert ui.headers["location"] == "/ui/"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip().count("+") >= 1  # the verifier key, printed once
    checkpoint = latest_checkpoint(load_log(root))
    assert checkpoint is not None
    assert checkpoint.size >= 3  # the key's admin record and both events, sealed at stop


def test_serve_refuses_a_locked_log(log_dir: tuple[Path, str]) -> None:
    root, _ = log_dir
    from auditseal.log.local import open_writer

    with open_writer(load_log(root)):
        assert run_cli("serve", "--log", root, "--port", str(free_port())) == 6
