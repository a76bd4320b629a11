"""Shared fixtures: sample events shaped like real Azure Activity Log records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from auditseal.cli.main import main
from auditseal.storage import clear_immutable
from tests.azurite import Azurite, azurite_executable, run_azurite

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def activity_event(i: int) -> bytes:
    """An Activity Log administrative record (diagnostic-export shape), ~1 KB."""
    return orjson.dumps({
        "time": f"2026-11-27T07:{i % 60:02d}:00.1234567Z",
        "resourceId": f"/SUBSCRIPTIONS/0000-1111/RESOURCEGROUPS/RG{i % 7}/PROVIDERS/"
                      f"MICROSOFT.STORAGE/STORAGEACCOUNTS/ACCT{i}",
        "operationName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/DELETE" if i % 5 == 0
        else "MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE",
        "category": "Administrative",
        "resultType": "Success",
        "callerIpAddress": f"203.0.113.{i % 250}",
        "correlationId": f"c0ffee00-0000-0000-0000-{i:012d}",
        "identity": {"authorization": {"scope": "/subscriptions/0000-1111", "action": "x"},
                     "claims": {"upn": f"user{i % 13}@contoso.com"}},
        "level": "Information",
        "properties": {"statusCode": "OK", "serviceRequestId": None, "eventCategory":
                       "Administrative", "entity": f"acct{i}", "message": "x" * (i % 300)},
    })


def run_cli(*args: str | Path) -> int:
    """Run the CLI in-process and return its exit code."""
    return main([str(a) for a in args])


@pytest.fixture(autouse=True, scope="session")
def _deletable_tmp_paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Clear the immutable attribute sealed files may get, so pytest can delete tmp dirs."""
    yield
    clear_immutable(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A real Azurite blob service on 127.0.0.1 for the whole session."""
    if azurite_executable() is None:
        if os.environ.get("CI"):
            pytest.fail("azurite-blob is not installed; 'make test' installs it")
        pytest.skip("azurite-blob not installed here (make test installs it)")
    with run_azurite() as running:
        yield running


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    """A JSON-lines file of 600 Activity Log records (crosses two bundle boundaries)."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(activity_event(i) for i in range(600)) + b"\n")
    return path


@pytest.fixture
def log_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """A new log with its verifier key."""
    root = tmp_path / "log"
    assert run_cli("init", "--log", root, "--name", "test.local/log", "--json") == 0
    vkey = orjson.loads(capsys.readouterr().out)["verifier_key"]
    return root, vkey
