"""A real Azurite (the Azure Storage emulator, npm ``azurite``) on 127.0.0.1 for tests.

``make test`` installs Azurite into ``.tools/`` (see the Makefile); each test session
starts its own instance on a free port with a throw-away data folder and stops it at the
end. Set ``AUDITSEAL_AZURITE`` to use another ``azurite-blob`` executable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@dataclass(frozen=True)
class Azurite:
    """A running emulator."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def endpoint(self) -> str:
        """The blob endpoint URL."""
        return f"http://{self.host}:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """A connection string for the default account."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.endpoint};"
        )


def azurite_executable() -> str | None:
    """Where azurite-blob is, or None."""
    configured = os.environ.get("AUDITSEAL_AZURITE")
    if configured:
        return configured
    local = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    return shutil.which("azurite-blob")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def run_azurite(port: int | None = None, location: Path | None = None) -> Iterator[Azurite]:
    """Start Azurite's blob service; stop it (and remove its data) afterwards."""
    executable = azurite_executable()
    if executable is None:
        raise RuntimeError("azurite-blob not found: run 'make test' (it installs it) or set "
                           "AUDITSEAL_AZURITE")
    port = port or free_port()
    data = location or Path(tempfile.mkdtemp(prefix="azurite-"))
    process = subprocess.Popen(
        [executable, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
         str(data), "--silent", "--skipApiVersionCheck", "--loose"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, process)
        yield Azurite("127.0.0.1", port, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if location is None:
            shutil.rmtree(data, ignore_errors=True)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"azurite exited with {process.returncode}: {err}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"azurite did not listen on port {port} within 30 s")
