"""``auditseal alerts run|test|list`` as written in issue 4."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditseal.cli import exitcodes
from auditseal.cli.commands_alerts import parse_duration
from auditseal.core.entry import decode_entry
from auditseal.errors import ConfigError
from auditseal.log.local import latest_checkpoint, load_log
from auditseal.log.reader import LogReader
from auditseal.verify import DirectorySource
from tests.alerts.helpers import SIGMAHQ, needs_corpus
from tests.conftest import run_cli

RULES = Path(__file__).resolve().parents[2] / "src" / "auditseal" / "alerts" / "rules"
KEYS_LISTED: dict[str, Any] = {
    "time": "2026-03-14T09:00:00.0000000Z", "category": "Administrative",
    "operationName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION", "resultType": "Success",
    "identity": {"claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":
                            "mallory@contoso.example"}}}
QUIET = {**KEYS_LISTED, "operationName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/READ"}


def _events(tmp_path: Path) -> Path:
    deletes = []
    for i in range(10):
        event = copy.deepcopy(KEYS_LISTED)
        event.update(operationName="MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE",
                     time=f"2026-03-14T10:0{i}:00Z")
        deletes.append(event)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in [QUIET, KEYS_LISTED, *deletes]) + b"\n")
    return path


def test_alerts_run_json_lists_rule_title_and_log_indexes(
        log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = log_dir
    assert run_cli("append", _events(tmp_path), "--log", root) == exitcodes.OK
    capsys.readouterr()
    assert run_cli("alerts", "run", "--log", root, "--json") == exitcodes.OK
    alerts = orjson.loads(capsys.readouterr().out)
    assert [(a["title"], a["indexes"]) for a in alerts] == [
        ("Azure Storage Account Keys Listed", [1]),
        ("Azure Mass Resource Deletion", list(range(2, 12))),
    ]
    assert all(a["rule_id"] for a in alerts)


def test_alerts_run_seal_appends_each_alert_once(
        log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = log_dir
    assert run_cli("append", _events(tmp_path), "--log", root) == exitcodes.OK
    for _ in range(2):  # a second run finds the alerts already sealed
        assert run_cli("alerts", "run", "--log", root, "--seal", "--json") == exitcodes.OK
    capsys.readouterr()
    log = load_log(root)
    checkpoint = latest_checkpoint(log)
    assert checkpoint is not None
    kinds = [decode_entry(raw).header.kind
             for _, raw in LogReader(DirectorySource(log.root), checkpoint).entries()]
    assert kinds.count("alert") == 2
    assert kinds.count("event") == 12


def test_alerts_run_since_skips_old_records(
        log_dir: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = log_dir
    assert run_cli("append", _events(tmp_path), "--log", root) == exitcodes.OK
    capsys.readouterr()
    assert run_cli("alerts", "run", "--log", root, "--since", "7d", "--json") == exitcodes.OK
    assert orjson.loads(capsys.readouterr().out) == []  # the records are from March 2026


def test_alerts_test_shows_what_matched_and_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(orjson.dumps(QUIET) + b"\n" + orjson.dumps(KEYS_LISTED) + b"\n")
    rule = RULES / "azure_storage_account_keys_listed.yml"
    assert run_cli("alerts", "test", rule, "--on", events, "--json") == exitcodes.OK
    result = orjson.loads(capsys.readouterr().out)
    assert [bool(e["matches"]) for e in result["events"]] == [False, True]
    [why] = result["events"][1]["matches"][0]["why"]
    assert why["detection"] == "selection"
    assert why["field"] == "operationName"
    assert run_cli("alerts", "test", rule, "--on", events) == exitcodes.OK
    assert "selection: operationName = MICROSOFT.STORAGE" in capsys.readouterr().out


def test_alerts_test_rejects_a_rule_that_does_not_load(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("title: x\nlogsource:\n  product: azure\ndetection:\n  condition: s\n")
    events = tmp_path / "e.jsonl"
    events.write_bytes(orjson.dumps(QUIET) + b"\n")
    assert run_cli("alerts", "test", bad, "--on", events) == exitcodes.MALFORMED


def test_alerts_list_json_reports_corpus_counts(capsys: pytest.CaptureFixture[str]) -> None:
    needs_corpus(SIGMAHQ)
    assert run_cli("alerts", "list", "--rules", SIGMAHQ / "rules" / "cloud" / "azure",
                   "--rules", SIGMAHQ / "rules-placeholder" / "cloud" / "azure",
                   "--json") == exitcodes.OK
    report = orjson.loads(capsys.readouterr().out)
    # 123 SigmaHQ rules + 7 placeholder rules + 16 built-in (12 rules, 4 correlations)
    assert report["counts"] == {"total": 146, "loaded": 139, "with_warnings": 2,
                                "not_loaded": 7}


@pytest.mark.parametrize(("text", "seconds"), [("7d", 604800.0), ("12h", 43200.0),
                                               ("30m", 1800.0), ("0", 0.0)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_rejects_nonsense() -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration("soon")
