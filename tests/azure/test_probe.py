"""The storage probe on Azure Blob: plain Azurite (no WORM) versus the WORM double.

Azurite enforces no immutability (reference notes 2.1), so every tampering attempt succeeds
there and the probe must say so. ``AzureWormDouble`` enforces Azure's documented WORM rules
in front of Azurite, so under a locked policy every modification is refused with
``BlobImmutableDueToPolicy``, while Set Blob Tier stays allowed as Azure documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from azure.storage.blob import BlobServiceClient

from auditseal.azure.tamper import AzureBlobTamper
from auditseal.storage.azure_blob import AzureBlobObjectStore
from auditseal.storage.probe import Outcome, run_probe
from tests.azurite import Azurite
from tests.conftest import run_cli
from tests.doubles import AzureWormDouble


@pytest.fixture(scope="module")
def worm(azurite: Azurite) -> Iterator[AzureWormDouble]:
    with AzureWormDouble(azurite) as double:
        yield double


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDITSEAL_STATE", str(tmp_path / "state"))
    return tmp_path


def _container(connection_string: str, name: str) -> None:
    BlobServiceClient.from_connection_string(connection_string).create_container(name)


def test_plain_azurite_is_not_protected(azurite: Azurite, state_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING", azurite.connection_string)
    assert run_cli("probe", "--log", "azblob://probe-plain/logs") == 1
    out = capsys.readouterr().out
    assert "the storage is NOT protected: overwrite, set metadata and delete of a sealed " \
           "object succeeded" in out
    assert run_cli("probe", "--log", "azblob://probe-plain/logs", "--json") == 1
    report = orjson.loads(capsys.readouterr().out)
    assert [a["outcome"] for a in report["attempts"]] == ["NOT refused"] * 4
    assert report["canary"].endswith("was deleted by the delete attempt")


def test_locked_policy_refuses_every_change(worm: AzureWormDouble, state_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    _container(worm.connection_string, "probe-locked")
    worm.set_container_policy("probe-locked", 30, locked=True)
    monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING", worm.connection_string)
    assert run_cli("probe", "--log", "azblob://probe-locked/logs", "--json") == 0
    report = orjson.loads(capsys.readouterr().out)
    assert [(a["action"], a["outcome"], a["code"]) for a in report["attempts"]] == [
        ("overwrite", "refused", "BlobImmutableDueToPolicy"),
        ("set_metadata", "refused", "BlobImmutableDueToPolicy"),
        ("set_tier", "NOT refused", ""),  # allowed by Azure's design; does not decide
        ("delete", "refused", "BlobImmutableDueToPolicy"),
    ]
    assert report["protected"] is True
    assert report["canary_key"].startswith("probe/canary-")
    assert "stays in the storage" in report["canary"]
    assert run_cli("probe", "--log", "azblob://probe-locked/logs") == 0
    out = capsys.readouterr().out
    assert "the storage is protected" in out
    assert "does not count" in out


def test_legal_hold_refuses_with_its_own_code(worm: AzureWormDouble) -> None:
    service = BlobServiceClient.from_connection_string(worm.connection_string)
    container = service.create_container("probe-hold")
    worm.set_container_legal_hold("probe-hold", "case1")
    store = AzureBlobObjectStore(container, "p")
    report = run_probe(store, AzureBlobTamper(container, "p"))
    assert [(a.outcome, a.code) for a in report.attempts if a.decides] == [
        (Outcome.REFUSED, "BlobImmutableDueToLegalHold")] * 3
    assert report.protected


def test_unlocked_policy_still_refuses_but_probe_cannot_tell_it_is_unlocked(
        worm: AzureWormDouble) -> None:
    # The probe proves enforcement today; 'auditseal azure status' flags the unlocked state.
    service = BlobServiceClient.from_connection_string(worm.connection_string)
    container = service.create_container("probe-unlocked")
    worm.set_container_policy("probe-unlocked", 1, locked=False)
    report = run_probe(AzureBlobObjectStore(container), AzureBlobTamper(container))
    assert report.protected


@pytest.mark.azure_live
@pytest.mark.skipif(not os.environ.get("AUDITSEAL_AZURE_LIVE_CONNECTION_STRING"),
                    reason="live Azure test: set AUDITSEAL_AZURE_LIVE_CONNECTION_STRING and "
                    "AUDITSEAL_AZURE_LIVE_LOG (an azblob:// URL whose container has a locked "
                    "policy) to run it")
def test_live_locked_container_is_protected(state_dir: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING",
                       os.environ["AUDITSEAL_AZURE_LIVE_CONNECTION_STRING"])
    assert run_cli("probe", "--log", os.environ["AUDITSEAL_AZURE_LIVE_LOG"]) == 0
