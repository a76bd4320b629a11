"""Interop: checkpoints and proofs from another C2SP log (the Go checksum database).

Vectors: tests/vectors/go_sumdb_* (provenance in tests/unit/test_note.py and
tests/unit/test_tlogproof.py: google/trillian-examples and transparency-dev/incubator).
"""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from auditseal.cli import exitcodes
from auditseal.errors import LogLocked
from auditseal.log.local import load_log, open_writer
from tests.conftest import run_cli

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SUMDB_KEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"


def test_checkpoint_verify_accepts_the_go_checksum_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = VECTORS / "go_sumdb_checkpoint_15081221.txt"
    assert run_cli("checkpoint", "verify", path, "--key", SUMDB_KEY, "--json") == exitcodes.OK
    result = orjson.loads(capsys.readouterr().out)
    assert result["origin"] == "go.sum database tree"
    assert result["size"] == 15081221
    assert result["verified_by"] == ["sum.golang.org"]


def test_checkpoint_verify_refuses_another_key(
    tmp_path: Path, log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    _, our_key = log_dir
    path = VECTORS / "go_sumdb_checkpoint_15081221.txt"
    assert run_cli("checkpoint", "verify", path, "--key", our_key) == exitcodes.INTEGRITY
    assert "unknown key" in capsys.readouterr().err


def test_bare_tlog_proof_from_sumdb_verifies_with_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    proof = VECTORS / "go_sumdb_43930254.tlog-proof"
    entry = VECTORS / "go_sumdb_43930254.raw"
    assert run_cli("proof", "verify", proof, "--key", SUMDB_KEY, "--entry", entry,
                   "--json") == exitcodes.OK
    assert orjson.loads(capsys.readouterr().out)["index"] == 43930254
    changed = tmp_path / "changed.raw"
    changed.write_bytes(entry.read_bytes().replace(b"v1.0.0", b"v1.0.1"))
    assert run_cli("proof", "verify", proof, "--key", SUMDB_KEY, "--entry",
                   changed) == exitcodes.INTEGRITY
    capsys.readouterr()
    assert run_cli("proof", "verify", proof, "--key", SUMDB_KEY) == exitcodes.CONFIG
    assert "--entry" in capsys.readouterr().err


def test_second_writer_gets_a_clear_error(
    log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    root, _ = log_dir
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with open_writer(load_log(root)):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        (tmp_path / "e.jsonl").write_bytes(b'{"a":1}\n')
        assert run_cli("append", tmp_path / "e.jsonl", "--log", root) == exitcodes.LOCKED
        assert "locked" in capsys.readouterr().err
        with pytest.raises(LogLocked), open_writer(load_log(root)):
            pass
    finally:
        release.set()
        holder.join()
