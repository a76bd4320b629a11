"""The CLI end to end on an ``azblob://`` log in Azurite: init, append, verify, prove, status.

The tree and the head live in Azurite; the private state (key, journal, lock) in
``$AUDITSEAL_STATE``, a temporary folder here.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from azure.storage.blob import BlobServiceClient

from auditseal.cli import exitcodes
from auditseal.errors import ConfigError
from auditseal.storage.azure_location import AzureBlobLocation, parse_url
from tests.azurite import ACCOUNT, KEY, Azurite, run_azurite
from tests.conftest import activity_event, run_cli


@pytest.fixture
def azure_env(azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials from Azurite's connection string; state in a temporary folder."""
    monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.delenv("AUDITSEAL_AZURE_ACCOUNT_KEY", raising=False)
    monkeypatch.delenv("AUDITSEAL_AZURE_SAS_TOKEN", raising=False)
    for name in ("CONNECTION_STRING", "ACCOUNT_KEY", "SAS_TOKEN"):
        monkeypatch.delenv(f"AUDITSEAL_AZURE_HEAD_{name}", raising=False)
    state = tmp_path / "state"
    monkeypatch.setenv("AUDITSEAL_STATE", str(state))
    return state


def _init(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert run_cli("init", "--log", url, "--name", "test.local/azure", "--json") == 0
    created = orjson.loads(capsys.readouterr().out)
    assert created["log"].startswith("azblob ")
    return str(created["verifier_key"])


def test_init_append_verify_prove_status(
    azure_env: Path, azurite: Azurite, events_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    container = f"cli-{uuid.uuid4().hex[:12]}"
    url = f"azblob://{container}/audit/prod?head={container}-ptr"
    vkey = _init(url, capsys)
    assert (azure_env / "signing.key").exists()

    assert run_cli("append", events_file, "--log", url, "--json") == exitcodes.OK
    appended = orjson.loads(capsys.readouterr().out)
    assert (appended["sealed"], appended["log_size"]) == (600, 600)

    assert run_cli("verify", "--log", url, "--key", vkey, "--json") == exitcodes.OK
    report = orjson.loads(capsys.readouterr().out)
    assert report["ok"]
    assert report["entries_checked"] == 600

    assert run_cli("prove", "--index", "321", "--log", url) == exitcodes.OK
    proof = tmp_path / "e321.tlog-proof"
    proof.write_text(capsys.readouterr().out)
    assert run_cli("proof", "verify", proof, "--key", vkey, "--json") == exitcodes.OK
    assert orjson.loads(capsys.readouterr().out)["event"] == orjson.loads(activity_event(321))

    assert run_cli("status", "--log", url, "--json") == exitcodes.OK
    status = orjson.loads(capsys.readouterr().out)
    assert status["size"] == 600
    assert status["storage"].endswith(f"/{container}/audit/prod")
    assert status["head"].endswith(f"/{container}-ptr/audit/prod/checkpoint")
    assert status["protection"]["read_only"] == 0  # Azurite has no WORM
    assert ACCOUNT in status["log"]
    assert KEY not in capsys.readouterr().out + str(status)

    # The layout in the storage: tlog-tiles under the prefix, the head in its container.
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    names = list(service.get_container_client(container).list_blob_names())
    assert "audit/prod/tile/entries/000" in names
    assert "audit/prod/tile/entries/002.p/88" in names
    assert "audit/prod/checkpoints/00000000000000000600" in names
    assert not any(name.endswith("/checkpoint") for name in names)
    head = service.get_container_client(f"{container}-ptr").download_blob("audit/prod/checkpoint")
    assert head.readall().startswith(b"test.local/azure\n600\n")


def test_init_refuses_an_existing_log(
    azure_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"azblob://cli-{uuid.uuid4().hex[:12]}"
    _init(url, capsys)
    assert run_cli("init", "--log", url, "--name", "test.local/azure") == exitcodes.CONFIG


def test_path_style_url_with_an_account_key(
    azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AUDITSEAL_AZURE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv("AUDITSEAL_AZURE_ACCOUNT_KEY", KEY)
    monkeypatch.setenv("AUDITSEAL_STATE", str(tmp_path / "state"))
    url = f"azblob://127.0.0.1:{azurite.port}/{ACCOUNT}/cli-{uuid.uuid4().hex[:12]}"
    vkey = _init(url, capsys)
    assert run_cli("append", events_file, "--log", url, "--json") == exitcodes.OK
    capsys.readouterr()
    assert run_cli("verify", "--log", url, "--key", vkey) == exitcodes.OK
    out = capsys.readouterr().out
    assert out.startswith("OK: 600 entries")
    assert KEY not in out


def test_tampered_blob_is_caught_by_verify(
    azure_env: Path, azurite: Azurite, capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    container = f"cli-{uuid.uuid4().hex[:12]}"
    url = f"azblob://{container}"
    vkey = _init(url, capsys)
    events = tmp_path / "few.jsonl"
    events.write_bytes(b"\n".join(activity_event(i) for i in range(10)) + b"\n")
    assert run_cli("append", events, "--log", url) == exitcodes.OK
    # Someone with write access to the (non-WORM) container rewrites the bundle.
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    bundle = service.get_container_client(container).get_blob_client("tile/entries/000.p/10")
    data = bytearray(bundle.download_blob().readall())
    data[-3] ^= 1
    bundle.upload_blob(bytes(data), overwrite=True)
    capsys.readouterr()
    assert run_cli("verify", "--log", url, "--key", vkey) != exitcodes.OK
    assert "entry 9" in capsys.readouterr().out


def test_head_in_another_account(
    azure_env: Path, azurite: Azurite, events_file: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The head lives in a second Azurite (another account's storage); the data in the first."""
    with run_azurite() as head_account:
        monkeypatch.setenv("AUDITSEAL_AZURE_HEAD_CONNECTION_STRING",
                           head_account.connection_string)
        container = f"acct-{uuid.uuid4().hex[:12]}"
        url = f"azblob://{container}?head=pointers/audit/checkpoint"
        vkey = _init(url, capsys)
        assert run_cli("append", events_file, "--log", url, "--json") == exitcodes.OK
        capsys.readouterr()
        assert run_cli("verify", "--log", url, "--key", vkey, "--json") == exitcodes.OK
        assert orjson.loads(capsys.readouterr().out)["entries_checked"] == 600
        assert run_cli("status", "--log", url, "--json") == exitcodes.OK
        status = orjson.loads(capsys.readouterr().out)
        assert status["head"].endswith(f"{head_account.endpoint}/pointers/audit/checkpoint")
        run_cli("azure", "status", "--log", url, "--json")  # exit 1: Azurite has no policy
        azure = orjson.loads(capsys.readouterr().out)
        assert azure["head_container"]["name"] == f"{ACCOUNT}/pointers"
        codes = {finding["code"] for finding in azure["findings"]}
        assert "head-unprotected" in codes
        assert "head-in-data-container" not in codes

        heads = BlobServiceClient.from_connection_string(head_account.connection_string)
        note = heads.get_blob_client("pointers", "audit/checkpoint").download_blob().readall()
        assert note.split(b"\n")[1] == b"600"
        data = BlobServiceClient.from_connection_string(azurite.connection_string)
        assert "pointers" not in {c.name for c in data.list_containers()}
        assert not list(heads.get_container_client("pointers").list_blobs("tile/"))
        names = {b.name for b in data.get_container_client(container).list_blobs()}
        assert "tile/entries/000" in names
        assert "checkpoint" not in names


@pytest.mark.parametrize(("url", "env", "expected"), [
    pytest.param("azblob://data1.blob.core.windows.net/logs?head_account=ptr1",
                 {"AUDITSEAL_AZURE_HEAD_ACCOUNT_KEY": KEY},
                 "https://ptr1.blob.core.windows.net", id="public-cloud"),
    pytest.param("azblob://data1.blob.core.usgovcloudapi.net/logs?head_account=ptr1",
                 {"AUDITSEAL_AZURE_HEAD_SAS_TOKEN": "?sv=x&sig=y"},
                 "https://ptr1.blob.core.usgovcloudapi.net", id="sovereign-cloud"),
    pytest.param("azblob://data1.blob.core.windows.net/logs", {}, None, id="same-account"),
])
def test_head_account_endpoint(url: str, env: dict[str, str], expected: str | None) -> None:
    location = AzureBlobLocation(parse_url(url), env={"AUDITSEAL_AZURE_ACCOUNT_KEY": KEY, **env})
    assert location.head_endpoint == expected
    assert (expected or location.endpoint) in location.describe()
    assert KEY not in location.describe()


@pytest.mark.parametrize(("url", "message"), [
    pytest.param("azblob://data1.blob.core.windows.net/logs?head_account=NO", "not a storage",
                 id="bad-account-name"),
    pytest.param(f"azblob://127.0.0.1:10000/{ACCOUNT}/logs?head_account=ptr1",
                 "AUDITSEAL_AZURE_HEAD_CONNECTION_STRING", id="emulator-needs-connection-string"),
])
def test_head_account_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AzureBlobLocation(parse_url(url), env={"AUDITSEAL_AZURE_ACCOUNT_KEY": KEY})


@pytest.mark.parametrize("variable", ["AUDITSEAL_AZURE_CONNECTION_STRING",
                                      "AUDITSEAL_AZURE_HEAD_CONNECTION_STRING"])
def test_a_malformed_connection_string_is_named(variable: str) -> None:
    with pytest.raises(ConfigError, match=f"{variable} is not a valid storage connection"):
        AzureBlobLocation(parse_url("azblob://data1.blob.core.windows.net/logs"),
                          env={"AUDITSEAL_AZURE_ACCOUNT_KEY": KEY, variable: "nonsense"})
