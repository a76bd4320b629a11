"""``auditseal collect azure-storage`` against Azurite: every record sealed exactly once.

Blobs are laid out as Azure Monitor writes them (``tests/azure/export_layout.py``) with
records from the real corpus. After every scenario, ``assert_exactly_once`` decodes every
entry of the log, checks that its ``src`` position points at the same bytes in the blob,
that no position is sealed twice, and that every complete record in the blobs is sealed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from auditseal.core.entry import decode_entry
from auditseal.errors import ConfigError
from auditseal.ingest import collector as collector_module
from auditseal.ingest.cursor import (
    BlobPosition,
    Cursor,
    load_cursor,
    parse_position,
    position_source,
    split_chunk,
)
from auditseal.log.local import latest_checkpoint, load_log
from auditseal.log.reader import LogReader
from tests.azure.export_layout import (
    ExportBlob,
    ExportWriter,
    activity_blob,
    category_blob,
    corpus_missing,
    corpus_records,
    resource_blob,
)
from tests.azurite import ACCOUNT, REPO, Azurite
from tests.conftest import run_cli

HOUR = datetime(2025, 4, 14, 11, tzinfo=UTC)
REPO_ROOT = REPO


@pytest.fixture
def export(azurite: Azurite) -> ExportWriter:
    """A storage account with no ``insights-*`` containers yet."""
    writer = ExportWriter(azurite.connection_string)
    writer.clear()
    return writer


@pytest.fixture
def corpus() -> dict[str, list[bytes]]:
    """Real records by category (skipped when the corpus is absent)."""
    missing = corpus_missing()
    if missing:
        pytest.skip(missing)
    return corpus_records()


def collect(azurite: Azurite, log: Path | str, capsys: pytest.CaptureFixture[str], *extra: str
            ) -> tuple[int, dict[str, object]]:
    """Run ``collect azure-storage --once --json``; exit code and summary."""
    capsys.readouterr()
    code = run_cli("collect", "azure-storage", "--connection-string", azurite.connection_string,
                   "--once", "--json", "--log", log, *extra)
    summary: dict[str, object] = orjson.loads(capsys.readouterr().out)
    return code, summary


def sealed_positions(log: Path) -> list[tuple[str, int, bytes]]:
    """(blob key, offset, event bytes) of every entry in the log, in log order."""
    opened = load_log(log)
    checkpoint = latest_checkpoint(opened)
    assert checkpoint is not None
    found = []
    for _, entry in LogReader(opened.object_store(), checkpoint).entries():
        decoded = decode_entry(entry)
        position = parse_position(decoded.header.source, ACCOUNT)
        assert position is not None, decoded.header.source
        found.append((*position, decoded.event))
    return found


def complete_records(blobs: dict[str, bytes]) -> set[tuple[str, int]]:
    """Independent oracle: the position of every valid JSON object on a complete line."""
    expected = set()
    for key, data in blobs.items():
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            line = data[start:newline]
            stripped = line.strip()
            try:
                valid = isinstance(orjson.loads(stripped), dict) and len(stripped) < 65000
            except orjson.JSONDecodeError:
                valid = False
            if valid:
                expected.add((key, start + len(line) - len(line.lstrip())))
            start = newline + 1
    return expected


def assert_exactly_once(export: ExportWriter, log: Path) -> int:
    """No duplicates, no gaps, every sealed event byte-equal to its place in the blob."""
    blobs = export.all_content()
    sealed = sealed_positions(log)
    counts = Counter((key, offset) for key, offset, _ in sealed)
    duplicates = [position for position, n in counts.items() if n > 1]
    assert not duplicates, f"sealed twice: {duplicates[:5]}"
    for key, offset, event in sealed:
        assert blobs[key][offset : offset + len(event)] == event, (key, offset)
    assert set(counts) == complete_records(blobs)
    return len(sealed)


def write_corpus(export: ExportWriter, corpus: dict[str, list[bytes]], hour: datetime
                 ) -> int:
    for category, records in corpus.items():
        export.append(category_blob(category, hour), records)
    return sum(len(records) for records in corpus.values())


# -- the CLI, --once ----------------------------------------------------------------------------


def test_first_run_seals_all_second_run_nothing_third_run_only_growth(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    total = write_corpus(export, corpus, HOUR)
    code, first = collect(azurite, log, capsys)
    assert (code, first["sealed"], first["rejected"]) == (0, total, [])
    assert first["blobs_listed"] == len(corpus)
    assert assert_exactly_once(export, log) == total

    code, second = collect(azurite, log, capsys)
    assert (code, second["sealed"], second["bytes_read"]) == (0, 0, 0)

    # The current hour grows, and a late record lands in the earlier hour's blob too.
    later = HOUR + timedelta(hours=1)
    fresh = export.append(activity_blob(later), corpus["administrative"] * 2)
    late = export.append(category_blob("signinlogs", HOUR), corpus["signinlogs"][:2])
    code, third = collect(azurite, log, capsys)
    assert (code, third["sealed"]) == (0, len(fresh) + len(late))
    assert assert_exactly_once(export, log) == total + len(fresh) + len(late)
    tail = sealed_positions(log)[total:]
    assert {(k, o) for k, o, _ in tail} == {
        *((activity_blob(later).key, o) for o in fresh),
        *((category_blob("signinlogs", HOUR).key, o) for o in late),
    }


def test_half_written_last_line_waits_for_its_newline(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    blob = category_blob("kube-audit", HOUR)
    record = corpus["kube-audit"][0]
    export.append(blob, corpus["kube-audit"][1:3])
    export.append_raw(blob, record[:100])
    code, summary = collect(azurite, log, capsys)
    assert (code, summary["sealed"], summary["rejected"]) == (0, 2, [])
    code, summary = collect(azurite, log, capsys)
    assert (code, summary["sealed"], summary["rejected"]) == (0, 0, [])
    export.append_raw(blob, record[100:] + b"\n")
    code, summary = collect(azurite, log, capsys)
    assert (code, summary["sealed"]) == (0, 1)
    assert sealed_positions(log)[-1][2] == record
    assert_exactly_once(export, log)


def test_unterminated_tail_is_final_once_the_blob_has_settled(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    blob = category_blob("riskyusers", HOUR)
    export.append_raw(blob, corpus["riskyusers"][0])  # the corpus file has no final newline
    assert collect(azurite, log, capsys)[1]["sealed"] == 0
    code, summary = collect(azurite, log, capsys, "--settle-s", "0")
    assert (code, summary["sealed"]) == (0, 1)
    assert sealed_positions(log) == [(blob.key, 0, corpus["riskyusers"][0])]


def test_pre_2018_records_document_is_read_whole_once_settled(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    records = corpus["auditlogs"][:3]
    document = b'{"records": [\n' + b",\n".join(records) + b"\n]}\n"
    export.append_raw(category_blob("auditlogs", HOUR), document)
    assert collect(azurite, log, capsys)[1]["sealed"] == 0  # may still grow
    code, summary = collect(azurite, log, capsys, "--settle-s", "0")
    assert (code, summary["sealed"]) == (0, 3)
    assert [event for _, _, event in sealed_positions(log)] == records


def test_bad_records_are_reported_once_skipped_and_kept(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    blob = category_blob("signinlogs", HOUR)
    good = corpus["signinlogs"]
    huge = b'{"category":"SignInLogs","pad":"' + b"x" * 70_000 + b'"}'
    export.append(blob, [good[0], b'{"time": "2025-04-11T16:17:00Z", "category":', good[1],
                         b"\"just a string\"", huge, good[2]])
    code, summary = collect(azurite, log, capsys)
    assert (code, summary["sealed"]) == (3, 3)
    rejected = summary["rejected"]
    assert isinstance(rejected, list)
    assert [(r["blob"], r["line"]) for r in rejected] == [(blob.key, 5), (blob.key, 2),
                                                          (blob.key, 4)]
    reasons = " | ".join(r["reason"] for r in rejected)
    assert "65,535" in reasons
    assert "incomplete JSON value" in reasons
    assert "not a JSON object" in reasons
    rejects = (log / ".auditseal/cursors" / f"azure-storage-{ACCOUNT}.rejects.jsonl")
    assert len(rejects.read_bytes().splitlines()) == 3
    # Skipped, not blocking: later records still arrive; the rejections are not repeated.
    export.append(blob, [good[3]])
    code, summary = collect(azurite, log, capsys)
    assert (code, summary["sealed"], summary["rejected"]) == (0, 1, [])
    assert len(sealed_positions(log)) == 4
    human = run_cli("collect", "azure-storage", "--connection-string",
                    azurite.connection_string, "--once", "--log", log)
    assert human == 0


def test_human_output_names_blob_line_and_reason(
    azurite: Azurite, export: ExportWriter, log_dir: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    blob = activity_blob(HOUR)
    export.append(blob, [b'{"ok": 1}', b"{'single': 'quoted'}"])
    capsys.readouterr()
    assert run_cli("collect", "azure-storage", "--connection-string", azurite.connection_string,
                   "--once", "--log", log) == 3
    out = capsys.readouterr()
    assert f"{blob.key}:2: rejected: invalid JSON" in out.err
    assert "sealed 1 records" in out.out


# -- crashes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["deleted", "rolled back", "never written"])
def test_lost_cursor_update_never_seals_twice(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, damage: str,
) -> None:
    log, _ = log_dir
    cursor = log / ".auditseal/cursors" / f"azure-storage-{ACCOUNT}.json"
    total = write_corpus(export, {k: corpus[k] for k in ("administrative", "auditlogs")}, HOUR)
    assert collect(azurite, log, capsys)[1]["sealed"] == total
    old = cursor.read_bytes()
    grown = export.append(category_blob("auditlogs", HOUR), corpus["auditlogs"][:5])
    if damage == "never written":
        # The crash window itself: records durable in the log, the cursor write lost.
        def crash(*_args: object, **_kwargs: object) -> None:
            raise OSError("simulated crash before the cursor was written")

        monkeypatch.setattr(collector_module, "save_cursor", crash)
        with pytest.raises(OSError, match="simulated crash"):
            run_cli("collect", "azure-storage", "--connection-string",
                    azurite.connection_string, "--once", "--log", log)
        monkeypatch.undo()
    else:
        assert collect(azurite, log, capsys)[1]["sealed"] == len(grown)
        if damage == "deleted":
            cursor.unlink()
        else:
            cursor.write_bytes(old)
    assert load_cursor(cursor).log_size <= total
    more = export.append(category_blob("auditlogs", HOUR), corpus["auditlogs"][5:7])
    code, summary = collect(azurite, log, capsys)
    # The grown records were sealed before the cursor was lost: only the new ones now.
    assert (code, summary["sealed"]) == (0, len(more))
    assert summary["already_sealed"] == len(grown) + (total if damage == "deleted" else 0)
    assert summary["reconciled_entries"] == total + len(grown) - (
        0 if damage == "deleted" else total)
    assert assert_exactly_once(export, log) == total + len(grown) + len(more)


def test_cursor_of_another_log_is_refused(
    azurite: Azurite, export: ExportWriter, log_dir: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    cursor = log / ".auditseal/cursors" / f"azure-storage-{ACCOUNT}.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_bytes(Cursor(log_size=99).encode())
    export.append(activity_blob(HOUR), [b'{"a": 1}'])
    capsys.readouterr()
    assert run_cli("collect", "azure-storage", "--connection-string", azurite.connection_string,
                   "--once", "--log", log) == 5
    assert "belongs to another log" in capsys.readouterr().err


# Runs the CLI with each cursor write delayed (seconds, uniform in $CURSOR_DELAY "lo,hi"), so
# that kills land in the window between "records durable in the log" and "cursor written".
# With $CURSOR_MARK set, the file it names is created as each delayed write starts: the
# round's records are durable by then (the collector writes its cursor after appending).
_SLOW_CURSOR = """
import os, random, sys, time
from auditseal.ingest import collector
real = collector.save_cursor
low, high = map(float, os.environ["CURSOR_DELAY"].split(","))
mark = os.environ.get("CURSOR_MARK")
def slow(*args, **kwargs):
    if mark:
        open(mark, "a").close()
    time.sleep(random.uniform(low, high))
    real(*args, **kwargs)
collector.save_cursor = slow
from auditseal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _start(azurite: Azurite, log: Path, interval_s: str = "0.05", *, cursor_delay: str = "",
           cursor_mark: Path | None = None) -> tuple[subprocess.Popen[str], int]:
    """Start a polling collector; returns it and how many log entries it reconciled."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep + str(REPO_ROOT),
           "CURSOR_DELAY": cursor_delay, "CURSOR_MARK": str(cursor_mark or "")}
    program = ["-c", _SLOW_CURSOR] if cursor_delay else ["-m", "auditseal"]
    process = subprocess.Popen(
        [sys.executable, *program, "collect", "azure-storage", "--connection-string",
         azurite.connection_string, "--interval-s", interval_s, "--log", str(log)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    started = process.stderr.readline()  # "collecting from ... (reconciled N log entries)"
    assert "collecting from" in started, started + process.stderr.read()
    return process, int(started.split("reconciled ")[1].split()[0])


@pytest.mark.slow
def test_sigkill_at_random_points_never_duplicates_or_skips(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str], capsys: pytest.CaptureFixture[str],
) -> None:
    log, _ = log_dir
    rng = random.Random(20250414)
    records = [r for rs in corpus.values() for r in rs]
    blobs = [activity_blob(HOUR), activity_blob(HOUR + timedelta(hours=1)),
             category_blob("signinlogs", HOUR)]
    found_sealed_beyond_cursor = 0
    # Kills at random points; then one surely inside the window: the cursor write waits 3 s
    # and the kill comes as soon as that write has started (the round's records are durable
    # by then). Watching the journal instead raced: a large round is sealed directly and
    # never shows there, and a journal is released again after each publish.
    mark = log.parent / "cursor-write-started"
    for delay, kill_after in [*[("0,0.2", rng.uniform(0.1, 0.5)) for _ in range(3)],
                              ("3,3", None)]:
        process, reconciled = _start(azurite, log, cursor_delay=delay,
                                     cursor_mark=None if kill_after else mark)
        found_sealed_beyond_cursor += reconciled > 0
        deadline = time.monotonic() + (kill_after or 30.0)
        while time.monotonic() < deadline:  # the exports keep growing meanwhile
            export.append(rng.choice(blobs), rng.sample(records, rng.randint(1, 20)))
            if kill_after is None and mark.exists():
                break
        assert kill_after or mark.exists(), "the collector never began a cursor write"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=10)
    code, summary = collect(azurite, log, capsys)
    assert code == 0, summary
    found_sealed_beyond_cursor += summary["reconciled_entries"] != 0
    assert found_sealed_beyond_cursor, "no kill landed between sealing and the cursor write"
    assert assert_exactly_once(export, log) > 0


def test_polling_picks_up_growth_and_stops_cleanly_on_sigterm(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]],
    log_dir: tuple[Path, str],
) -> None:
    log, _ = log_dir
    blob = category_blob("kube-audit", HOUR)
    export.append(blob, corpus["kube-audit"][:3])
    process, _ = _start(azurite, log, interval_s="0.1")
    try:
        export.append(blob, corpus["kube-audit"][3:8])
        export.append(resource_blob("auditevent", "/subscriptions/s/resourceGroups/rg/providers/"
                                    "Microsoft.KeyVault/vaults/kv", HOUR), [b'{"k": 1}'])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            checkpoint = latest_checkpoint(load_log(log))
            if checkpoint is not None and checkpoint.size >= 9:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped" in err
    assert "sealed" in out
    assert assert_exactly_once(export, log) == 9


# -- building blocks ----------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "expected"), [
    (position_source(ACCOUNT, "insights-activity-logs/resourceId=/X/PT1H.json", 42),
     ("insights-activity-logs/resourceId=/X/PT1H.json", 42)),
    ("azblob:otheraccount/insights-activity-logs/a/PT1H.json#1", None),
    ("file:events.json", None),
    (None, None),
    (f"azblob:{ACCOUNT}/c/b#", None),
    (f"azblob:{ACCOUNT}/c/b#-1", None),
], ids=["round-trip", "other account", "other source", "no source", "no offset",
        "negative offset"])
def test_parse_position(source: str | None, expected: tuple[str, int] | None) -> None:
    assert parse_position(source, ACCOUNT) == expected


def test_cursor_round_trip_and_damage(tmp_path: Path) -> None:
    cursor = Cursor(log_size=7, blobs={"c/a": BlobPosition(120, 4), "c/b": BlobPosition()})
    assert Cursor.parse(cursor.encode(), "x") == cursor
    assert load_cursor(tmp_path / "absent.json") == Cursor()
    for damaged in (b"{", b'{"format": 2}', b'{"format": 1, "log_size": -1, "blobs": {}}',
                    b'{"format": 1, "log_size": 1, "blobs": {"c/a": [1]}}'):
        with pytest.raises(ConfigError, match="move it aside"):
            Cursor.parse(damaged, "cursor.json")


@pytest.mark.parametrize(("chunk", "records", "rejected_lines"), [
    (b'{"a": 1}\n{"b": 2}\n', [(1, 0), (2, 9)], []),
    (b'{"a":\n{"b": 2}\n', [(2, 6)], [1]),
    (b'[1]\n{"b": 2}\n', [(2, 4)], [1]),
    (b'\r\n  {"b": 2}\r\n', [(2, 4)], []),
], ids=["lines", "broken first line does not swallow the rest", "array first line",
        "crlf and blank"])
def test_split_chunk_pins_json_lines_mode(
    chunk: bytes, records: list[tuple[int, int]], rejected_lines: list[int]
) -> None:
    found, rejected = split_chunk(chunk, document=False, at_start=False)
    assert [(r.line, r.offset) for r in found] == records
    assert [r.line for r in rejected] == rejected_lines
    for record in found:
        assert chunk[record.offset : record.offset + len(record.data)] == record.data


def test_bom_is_skipped_only_at_the_start_of_a_blob() -> None:
    found, _ = split_chunk(b'\xef\xbb\xbf{"a": 1}\n', document=False, at_start=True)
    assert [(r.offset, r.data) for r in found] == [(3, b'{"a": 1}')]
    found, rejected = split_chunk(b'\xef\xbb\xbf{"a": 1}\n', document=False, at_start=False)
    assert (found, len(rejected)) == ([], 1)


def test_missing_credentials_is_a_config_error(
    log_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    assert run_cli("collect", "azure-storage", "--once", "--log", log_dir[0]) == 5
    assert "--connection-string" in capsys.readouterr().err


def test_export_blob_names_follow_the_azure_layout() -> None:
    assert activity_blob(HOUR) == ExportBlob(
        "insights-activity-logs",
        "resourceId=/SUBSCRIPTIONS/11111111-1111-1111-1111-111111111111/"
        "y=2025/m=04/d=14/h=11/m=00/PT1H.json")
    assert resource_blob("AuditEvent", "/subscriptions/s/resourceGroups/rg/providers/"
                         "Microsoft.KeyVault/vaults/kv", HOUR).name.startswith(
        "resourceId=/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV/")


def test_log_in_azure_blob_storage(
    azurite: Azurite, export: ExportWriter, corpus: dict[str, list[bytes]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AUDITSEAL_AZURE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("AUDITSEAL_STATE", str(tmp_path / "state"))
    url = f"azblob://sealed-{random.randrange(1 << 30):x}/audit"
    assert run_cli("init", "--log", url, "--name", "test.local/azlog", "--json") == 0
    blob = category_blob("auditlogs", HOUR)
    export.append(blob, corpus["auditlogs"][:4])
    assert collect(azurite, url, capsys)[1]["sealed"] == 4
    export.append(blob, corpus["auditlogs"][4:6])
    code, summary = collect(azurite, url, capsys)
    assert (code, summary["sealed"], summary["log_size"]) == (0, 2, 6)
    assert (tmp_path / "state/cursors" / f"azure-storage-{ACCOUNT}.json").is_file()
