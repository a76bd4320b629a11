"""The search index: schema, feeding from the log, crash resumption, rebuild and check.

Events are real records from the shared corpus (Datadog's Azure forwarder fixtures, the
OpenTelemetry Collector's azurelogs test data), sealed through the real CLI.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest

from auditseal import index as index_package
from auditseal.errors import IntegrityError
from auditseal.index import schema
from auditseal.index.duckdb_index import (
    check_index,
    derive_row,
    index_path,
    index_status,
    log_reader,
    update_index,
)
from auditseal.index.query import run_query
from auditseal.ingest.normalize import normalize_bytes
from auditseal.log.local import load_log
from tests.conftest import CORPUS, activity_event, run_cli

FIXTURES = CORPUS / "datadog_azure-log-forwarding-orchestration/forwarder/internal/logs/fixtures"
CORPUS_FILES = [
    *sorted((FIXTURES / "activedirectory").glob("*.json")),
    FIXTURES / "aks_logs.json",
    CORPUS / "otel_collector_contrib/pkg/translator/azurelogs/testdata/administrative/valid_1.json",
]
SMALL = 300
SUMMARY = ("AuditEvents | summarize n = count() by Type, Caller, bin(TimeGenerated, 1h) "
           "| order by Type asc, Caller asc, TimeGenerated asc")


def seal(root: Path, files: list[Path]) -> Path:
    """A new log at ``root`` holding ``files``, appended through the CLI."""
    assert run_cli("init", "--log", root, "--name", "test.local/index") == 0
    for path in files:
        assert run_cli("append", "--log", root, "--no-progress", path) == 0
    return root


@pytest.fixture(scope="module")
def corpus_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of the corpus records (139 events over nine tables), not yet indexed."""
    return seal(tmp_path_factory.mktemp("corpus") / "log", CORPUS_FILES)


@pytest.fixture
def small_log(tmp_path: Path) -> Path:
    """A log of 300 Activity Log records (two bundles), its own copy for each test."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(activity_event(i) for i in range(SMALL)) + b"\n")
    return seal(tmp_path / "log", [events])


def test_public_names_are_pinned() -> None:
    assert sorted(index_package.__all__) == [
        "IndexFinding", "IndexReport", "IndexStatus", "IndexUpdate", "ProvenResult",
        "QueryResult", "RowProof", "Searcher", "check_index", "index_path", "index_status",
        "open_searcher", "prove_result", "rebuild_index", "run_query", "translate_kql",
        "update_index", "write_proofs",
    ]


@pytest.mark.parametrize("table", ["AzureActivity", "SigninLogs", "AuditLogs",
                                   "AzureDiagnostics", "AADNonInteractiveUserSignInLogs",
                                   "MicrosoftGraphActivityLogs", "AKSAudit", "StorageBlobLogs",
                                   "AzureEvent"])
def test_every_table_normalize_names_has_a_view(table: str) -> None:
    assert table in schema.TABLES
    columns = schema.TABLE_COLUMNS[table]
    assert columns[0] == "TimeGenerated"
    assert {"_LogIndex", "_LeafHash", "_Event", "Type"} <= set(columns)
    assert len(columns) == len(set(columns)), "a view must not repeat a column"


@pytest.mark.parametrize(("table", "columns"), [
    ("AzureActivity", ["OperationNameValue", "OperationName", "Caller", "CallerIpAddress",
                       "ActivityStatusValue", "CategoryValue", "ResourceId", "_ResourceId",
                       "SubscriptionId", "TenantId", "CorrelationId", "Level", "Properties"]),
    ("SigninLogs", ["UserPrincipalName", "IPAddress", "ResultType", "AppDisplayName",
                    "Location"]),
    ("AuditLogs", ["OperationName", "InitiatedBy", "Result", "TargetResources"]),
], ids=["AzureActivity", "SigninLogs", "AuditLogs"])
def test_log_analytics_column_names(table: str, columns: list[str]) -> None:
    assert set(columns) <= set(schema.TABLE_COLUMNS[table])


def test_views_compile_on_an_empty_index() -> None:
    with duckdb.connect() as con:
        for statement in [*schema.create_statements(), *schema.view_statements()]:
            con.execute(statement)
        for table in schema.TABLE_COLUMNS:
            assert con.execute(f'SELECT * FROM "{table}"').fetchall() == []


def test_derived_row_carries_leaf_hash_and_normalized_fields(corpus_log: Path) -> None:
    log = load_log(corpus_log)
    index, entry = next(log_reader(log).entries(138, 139))
    row = dict(zip([n for n, _ in schema.PHYSICAL_COLUMNS], derive_row(index, entry),
                   strict=True))
    event = entry.split(b"\n", 1)[1]
    normalized = normalize_bytes(event)
    # RFC 9162 section 2.1.1: leaf hash = SHA-256(0x00 || entry).
    assert row["_LeafHash"] == hashlib.sha256(b"\x00" + entry).hexdigest()
    assert row["_LogIndex"] == 138
    assert row["Type"] == normalized.table == "AzureActivity"
    assert row["OperationName"] == "MICROSOFT.INSIGHTS/DIAGNOSTICSETTINGS/WRITE"
    assert row["_Event"] == event.decode()
    assert row["_Source"] == "file:valid_1.json"


def test_feed_indexes_every_entry_once_per_table(corpus_log: Path) -> None:
    log = load_log(corpus_log)
    update = update_index(log)
    assert (update.start, update.end) == (0, 139)
    again = update_index(log)
    assert again.rows == 0
    result = run_query(log, "AuditEvents | summarize n = count() by Type | order by Type asc",
                       update=False)
    counts: dict[str, int] = dict(result.rows)
    assert sum(counts.values()) == 139
    assert counts["AKSAudit"] == 21
    assert counts["AzureActivity"] == 1
    assert counts["SigninLogs"] == 5
    status = index_status(log)
    assert (status.size, status.rows, status.behind) == (139, 139, 0)


def test_feed_is_incremental(small_log: Path, tmp_path: Path) -> None:
    log = load_log(small_log)
    assert update_index(log).rows == SMALL
    more = tmp_path / "more.jsonl"
    more.write_bytes(b"\n".join(activity_event(i) for i in range(SMALL, SMALL + 50)) + b"\n")
    assert run_cli("append", "--log", small_log, "--no-progress", more) == 0
    update = update_index(log)
    assert (update.start, update.end) == (SMALL, SMALL + 50)
    assert check_index(log).ok


def test_interrupted_feed_resumes_at_a_batch_boundary(small_log: Path) -> None:
    log = load_log(small_log)
    seen: list[int] = []

    def crash_after_two_batches(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        update_index(log, batch=100, progress=crash_after_two_batches)
    assert index_status(log).size == 200 == index_status(log).rows
    assert update_index(log, batch=100).start == 200
    assert check_index(log).ok


def test_killed_feeder_leaves_no_gap_or_duplicate(small_log: Path) -> None:
    """SIGKILL a feeding process mid-way (batches of 10 entries), then resume."""
    code = ("import sys; from auditseal.log.local import load_log; "
            "from auditseal.index.duckdb_index import update_index; "
            f"update_index(load_log({str(small_log)!r}), batch=10, "
            "progress=lambda d, t: print(d, flush=True))")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None
    for _ in range(5):  # let it commit a few batches, then kill it between two
        process.stdout.readline()
    process.kill()
    process.wait()
    log = load_log(small_log)
    interrupted = index_status(log)
    assert interrupted.size == interrupted.rows
    assert 50 <= interrupted.size < SMALL
    assert update_index(log).end == SMALL
    report = check_index(log)
    assert report.ok, report.findings


def test_rebuild_gives_identical_results(corpus_log: Path) -> None:
    log = load_log(corpus_log)
    update_index(log)
    before = run_query(log, SUMMARY, update=False)
    path = index_path(log)
    path.unlink()
    assert run_cli("index", "rebuild", "--log", corpus_log, "--no-progress") == 0
    after = run_query(log, SUMMARY, update=False)
    assert after.rows == before.rows
    assert len(after.rows) > 10


@pytest.mark.parametrize(("tamper", "what", "where"), [
    ("UPDATE _events SET Caller = 'mallory' WHERE _LogIndex = 5", "edited", 5),
    ("UPDATE _events SET _Event = '{\"x\":1}' WHERE _LogIndex = 42", "edited", 42),
    ("DELETE FROM _events WHERE _LogIndex = 7", "missing", 7),
    ("INSERT INTO _events SELECT * FROM _events WHERE _LogIndex = 9", "duplicated", 9),
    ("INSERT INTO _events SELECT * REPLACE (700 AS _LogIndex) FROM _events "
     "WHERE _LogIndex = 1", "added", 700),
], ids=["edited-column", "edited-event", "missing", "duplicated", "added"])
def test_check_finds_and_locates_disagreement(corpus_log: Path, tmp_path: Path, tamper: str,
                                             what: str, where: int) -> None:
    log = load_log(corpus_log)
    update_index(log)
    good = tmp_path / "good.duckdb"
    shutil.copy(index_path(log), good)
    try:
        with duckdb.connect(str(index_path(log))) as con:
            con.execute(tamper)
        report = check_index(log)
    finally:
        shutil.copy(good, index_path(log))
    assert [(f.what, f.index) for f in report.findings] == [(what, where)]
    if what == "edited":
        assert ("Caller" if "Caller" in tamper else "_Event") in report.findings[0].detail


def test_check_and_rebuild_commands(small_log: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    update_index(load_log(small_log))
    with duckdb.connect(str(index_path(load_log(small_log)))) as con:
        con.execute("UPDATE _events SET Result = 'Failure' WHERE _LogIndex = 260")
    capsys.readouterr()
    assert run_cli("index", "check", "--log", small_log, "--json", "--no-progress") == 1
    out = orjson.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["findings"] == [{"what": "edited", "index": 260,
                                "detail": "columns differ: Result"}]
    assert run_cli("index", "check", "--log", small_log, "--no-progress") == 1
    assert "entry 260: edited: columns differ: Result" in capsys.readouterr().out
    assert run_cli("index", "rebuild", "--log", small_log, "--no-progress") == 0
    assert run_cli("index", "check", "--log", small_log, "--no-progress") == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("OK: 300 indexed entries")


def test_index_ahead_of_the_log_is_refused(small_log: Path, tmp_path: Path) -> None:
    log = load_log(small_log)
    update_index(log)
    other = seal(tmp_path / "other", [])
    shutil.copy(index_path(log), index_path(load_log(other)))
    with duckdb.connect(str(index_path(load_log(other)))) as con:
        con.execute("UPDATE _index_state SET origin = 'test.local/index'")
    with pytest.raises(IntegrityError, match="ahead"):
        update_index(load_log(other))
    report = check_index(load_log(other))
    assert report.findings[0].what == "ahead of the log"


def test_status_command(small_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("index", "status", "--log", small_log, "--json") == 0
    assert orjson.loads(capsys.readouterr().out)["exists"] is False
    update_index(load_log(small_log))
    assert run_cli("index", "status", "--log", small_log, "--json") == 0
    status = orjson.loads(capsys.readouterr().out)
    assert (status["size"], status["behind"]) == (SMALL, 0)
