"""No acknowledged event is lost when Azure storage goes away for a while.

A log on ``azblob://`` in its own Azurite; events are appended with the background
publisher running; Azurite is stopped (process terminated) mid-run; appends go on and must
still succeed (they are journaled locally); Azurite restarts on the same port with the same
data folder; everything must drain (the head reaches the full size) and
``auditseal verify`` must pass.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import pytest

from auditseal.cli import exitcodes
from auditseal.config import WriterConfig
from auditseal.errors import StorageUnavailable
from auditseal.log.local import init_log, latest_checkpoint, load_log, open_writer
from auditseal.storage.azure_errors import AzureRetryConfig
from auditseal.storage.azure_location import AzureBlobLocation, parse_url
from tests.azurite import azurite_executable, free_port, run_azurite
from tests.conftest import activity_event, run_cli

pytestmark = pytest.mark.skipif(azurite_executable() is None,
                                reason="azurite-blob not installed here (make test installs it)")

# Fail fast while storage is down (the publisher retries on its own cadence anyway).
FAST = AzureRetryConfig(retries=1, initial_backoff_s=0.05, increment_base_s=0.2, jitter_s=0.0,
                        connection_timeout_s=1.0, read_timeout_s=5.0)
CONFIG = WriterConfig(publish_interval_s=0.05, set_immutable=False)


def _wait(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_events_survive_a_storage_outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="azurite-outage-", dir=tmp_path))
    url = "azblob://outage/log"
    monkeypatch.setenv("AUDITSEAL_STATE", str(tmp_path / "state"))
    with run_azurite(port=port, location=data) as azurite:
        monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING", azurite.connection_string)
        _, vkey = init_log(url, "test.local/outage")
    log = load_log(url)
    assert isinstance(log.remote, AzureBlobLocation)
    log = dataclasses.replace(log, remote=AzureBlobLocation(parse_url(url), retry=FAST))

    with run_azurite(port=port, location=data) as azurite, open_writer(log, config=CONFIG) as w:
        w.start_publisher()
        for i in range(300):
            w.append([activity_event(i)])
        assert _wait(lambda: w.checkpoint is not None and w.checkpoint.size == 300, 10)

        azurite.process.terminate()  # storage goes away mid-run
        azurite.process.wait(10)
        down: list[int] = []
        for i in range(300, 900):  # appends must still be acknowledged: they are journaled
            down += w.append([activity_event(i)])
        assert down == list(range(300, 900))
        assert _wait(lambda: isinstance(w.publish_error, StorageUnavailable), 10), \
            w.publish_error
        assert w.checkpoint is not None
        assert w.checkpoint.size < 900

        with run_azurite(port=port, location=data):  # back, same port, same data
            for i in range(900, 1000):
                w.append([activity_event(i)])
            assert _wait(lambda: w.checkpoint is not None and w.checkpoint.size == 1000, 20), \
                (w.checkpoint.size if w.checkpoint else None, w.publish_error)
            assert w.publish_error is None
            w.stop_publisher()
            head = latest_checkpoint(log)
            assert head is not None
            assert head.size == 1000
            assert run_cli("verify", "--log", url, "--key", vkey, "--json") == exitcodes.OK
            assert '"entries_checked":1000' in capsys.readouterr().out.replace(" ", "")
