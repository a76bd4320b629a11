"""The CLI end to end, in-process and as a subprocess, on a real log directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from auditseal.cli import exitcodes
from auditseal.core.entry import decode_entry
from auditseal.core.tlogproof import TlogProof
from auditseal.log.local import latest_checkpoint, load_log
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource
from tests.conftest import activity_event, run_cli


def test_append_verify_prove_round_trip(
    log_dir: tuple[Path, str], events_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, vkey = log_dir
    assert run_cli("append", events_file, "--log", root, "--json") == exitcodes.OK
    appended = orjson.loads(capsys.readouterr().out)
    assert appended["sealed"] == 600
    assert (appended["first_index"], appended["last_index"], appended["log_size"]) == (0, 599, 600)

    assert run_cli("verify", "--log", root, "--key", vkey, "--json") == exitcodes.OK
    report = orjson.loads(capsys.readouterr().out)
    assert report["ok"]
    assert report["entries_checked"] == 600
    assert report["key_pinned"]

    assert run_cli("prove", "--index", "457", "--log", root) == exitcodes.OK
    proof = tmp_path / "e457.tlog-proof"
    proof.write_text(capsys.readouterr().out)
    assert proof.read_text().startswith("c2sp.org/tlog-proof@v1\nextra ")
    assert run_cli("proof", "verify", proof, "--key", vkey, "--json") == exitcodes.OK
    verified = orjson.loads(capsys.readouterr().out)
    assert verified["index"] == 457
    assert verified["event"] == orjson.loads(activity_event(457))


def test_event_bytes_are_sealed_verbatim(
    log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = log_dir
    odd = b'{ "b" : 1,\t"a":"\\u00e9 caf\xc3\xa9",  "n": 1.50 }'
    (tmp_path / "one.json").write_bytes(odd + b"\r\n")
    assert run_cli("append", tmp_path / "one.json", "--log", root) == exitcodes.OK
    capsys.readouterr()
    assert run_cli("prove", "--index", "0", "--log", root) == exitcodes.OK
    proof = TlogProof.parse(capsys.readouterr().out.encode())
    assert proof.extra is not None
    assert decode_entry(proof.extra).event == odd


def test_bad_records_are_reported_and_good_ones_sealed(
    log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = log_dir
    lines = [activity_event(0), b"{not json", activity_event(1), b"[1, 2]", activity_event(2)]
    (tmp_path / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert run_cli("append", tmp_path / "mixed.jsonl", "--log", root) == exitcodes.REJECTED
    captured = capsys.readouterr()
    assert "mixed.jsonl:2: rejected" in captured.err
    assert "mixed.jsonl:4: rejected" in captured.err
    assert "sealed 3 events" in captured.out


def test_oversized_event_is_rejected_with_the_limit(
    log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = log_dir
    big = orjson.dumps({"blob": "x" * 70_000})
    (tmp_path / "big.jsonl").write_bytes(activity_event(0) + b"\n" + big + b"\n")
    assert run_cli("append", tmp_path / "big.jsonl", "--log", root, "--json") == 3
    result = orjson.loads(capsys.readouterr().out)
    assert result["sealed"] == 1
    assert "65,535" in result["rejected"][0]["reason"]
    assert result["rejected"][0]["line"] == 2


def test_json_array_rejections_keep_input_order_and_lines(
    log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the client SDK sends: one array; here pretty-printed, one element per line,
    # with a bad element, an oversized one and a number among good ones.
    root, _ = log_dir
    big = orjson.dumps({"blob": "x" * 70_000})
    elements = [activity_event(0), big, activity_event(1), b"7", activity_event(2)]
    (tmp_path / "batch.json").write_bytes(b"[\n" + b",\n".join(elements) + b"\n]\n")
    assert run_cli("append", tmp_path / "batch.json", "--log", root, "--json") == 3
    result = orjson.loads(capsys.readouterr().out)
    assert result["sealed"] == 3
    assert [r["line"] for r in result["rejected"]] == [3, 5]
    assert "65,535" in result["rejected"][0]["reason"]
    assert "array element 3: not a JSON object" in result["rejected"][1]["reason"]
    assert run_cli("prove", "--index", "2", "--log", root) == exitcodes.OK
    proof = TlogProof.parse(capsys.readouterr().out.encode())
    assert proof.extra is not None
    assert decode_entry(proof.extra).event == activity_event(2)


def test_init_never_overwrites_a_key(log_dir: tuple[Path, str],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = log_dir
    key_before = (root / ".auditseal" / "signing.key").read_bytes()
    assert run_cli("init", "--log", root) == exitcodes.CONFIG
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (root / ".auditseal" / "signing.key").read_bytes() == key_before


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(["status", "--log", "{missing}"], exitcodes.CONFIG, "no auditseal log",
                     id="no-log"),
        pytest.param(["append", "{missing}/x.json", "--log", "{log}"], exitcodes.CONFIG,
                     "does not exist", id="missing-input"),
        pytest.param(["prove", "--index", "5", "--log", "{log}"], exitcodes.CONFIG,
                     "not in the log", id="index-out-of-range"),
        pytest.param(["verify", "--log", "{log}", "--key", "garbage+1+2"], exitcodes.CONFIG,
                     "bad verifier key", id="bad-key"),
    ],
)
def test_user_errors_are_one_line_with_distinct_codes(
    log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    argv: list[str], code: int, message: str,
) -> None:
    root, _ = log_dir
    args = [a.format(missing=tmp_path / "nope", log=root) for a in argv]
    assert run_cli(*args) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_status_reports_protection(log_dir: tuple[Path, str], events_file: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = log_dir
    run_cli("append", events_file, "--log", root)
    capsys.readouterr()
    assert run_cli("status", "--log", root, "--json") == exitcodes.OK
    status = orjson.loads(capsys.readouterr().out)
    assert status["size"] == 600
    assert status["protection"]["read_only"] == status["protection"]["objects_sampled"] > 0


def test_consistency_proof_round_trip(log_dir: tuple[Path, str], events_file: Path,
                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, vkey = log_dir
    run_cli("append", events_file, "--log", root)
    (tmp_path / "more.jsonl").write_bytes(activity_event(1000) + b"\n")
    run_cli("append", tmp_path / "more.jsonl", "--log", root)
    capsys.readouterr()
    assert run_cli("prove", "--old-size", "600", "--log", root) == exitcodes.OK
    (tmp_path / "c.json").write_text(capsys.readouterr().out)
    assert run_cli("proof", "verify", tmp_path / "c.json", "--key", vkey) == exitcodes.OK
    assert "append-only extension of size 600" in capsys.readouterr().out


def test_python_dash_m_and_env_log_location(events_file: Path, tmp_path: Path) -> None:
    env = {**os.environ, "AUDITSEAL_LOG": str(tmp_path / "envlog")}
    run = [sys.executable, "-m", "auditseal"]
    subprocess.run([*run, "init"], env=env, check=True, capture_output=True)
    done = subprocess.run([*run, "append", "-"], env=env, input=events_file.read_bytes(),
                          capture_output=True, check=True)
    assert b"sealed 600 events" in done.stdout
    verify = subprocess.run([*run, "verify"], env=env, capture_output=True, check=False)
    assert verify.returncode == 0, verify.stderr
    assert b"Traceback" not in verify.stderr


def test_reader_iterates_entries_across_bundles(log_dir: tuple[Path, str],
                                                 events_file: Path) -> None:
    root, _ = log_dir
    run_cli("append", events_file, "--log", root)
    checkpoint = latest_checkpoint(load_log(root))
    assert checkpoint is not None
    reader = LogReader(DirectorySource(root), checkpoint)
    got = list(reader.entries(250, 520))
    assert [i for i, _ in got] == list(range(250, 520))
    assert all(decode_entry(e).event == activity_event(i) for i, e in got)
    assert [i for i, _ in reader.entries(599, 10_000)] == [599]
