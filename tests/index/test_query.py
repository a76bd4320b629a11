"""``auditseal query``: KQL and SQL over the index, output formats, errors, read-only, --prove.

Events are real records from the shared corpus sealed through the real CLI; every check of
a proof goes through the real ``auditseal proof verify``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import duckdb
import orjson
import pytest

from auditseal.index.duckdb_index import index_path, update_index
from auditseal.index.query import json_value, translate_kql
from auditseal.log.local import load_log
from tests.conftest import run_cli
from tests.index.test_index import CORPUS_FILES, seal

ISSUE_QUERY = ("AzureActivity | where OperationNameValue has \"write\" "
               "| summarize count() by Caller, bin(TimeGenerated, 1h)")
HARRY = ("SigninLogs | where UserPrincipalName has \"harry.potter\" "
         "| project TimeGenerated, UserPrincipalName, IPAddress, Location, _LogIndex, _LeafHash")


@pytest.fixture(scope="module")
def corpus_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of the corpus records (139 events over nine tables)."""
    return seal(tmp_path_factory.mktemp("corpus") / "log", CORPUS_FILES)


def query_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> object:
    capsys.readouterr()
    assert run_cli("query", *args, "--json") == 0
    return orjson.loads(capsys.readouterr().out)


def test_issue_query_as_json(corpus_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = query_json(capsys, ISSUE_QUERY, "--log", corpus_log)
    # otel valid_1.json: one diagnostic-settings write by user@example.com at 10:16:32Z.
    assert rows == [{"Caller": "user@example.com", "TimeGenerated": "2025-04-15T10:00:00.000000Z",
                     "count_": 1}]


def test_query_feeds_the_index_first(corpus_log: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    rows = query_json(capsys, "AuditEvents | count", "--log", corpus_log)
    assert rows == [{"Count": 139}]
    assert index_path(load_log(corpus_log)).exists()


def test_sign_in_columns_read_from_the_sealed_json(corpus_log: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rows = query_json(capsys, HARRY, "--log", corpus_log)
    assert isinstance(rows, list)
    assert [r["_LogIndex"] for r in rows] == sorted(r["_LogIndex"] for r in rows)
    first = rows[0]
    # datadog fixtures activedirectory/sign_in_logs.json, first record.
    assert first["UserPrincipalName"] == "harry.potter@hogwarts.com"
    assert first["IPAddress"] == "68.198.218.175"
    assert first["Location"] == "US"
    assert first["TimeGenerated"] == "2025-04-11T16:17:00.739774Z"


def test_dynamic_columns_are_json_objects(corpus_log: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rows = query_json(capsys, "AKSAudit | where Verb == 'get' | take 1 "
                      "| project Verb, RequestUri, User, SourceIps", "--log", corpus_log)
    assert rows == [{"Verb": "get", "RequestUri": "/readyz",
                     "User": {"username": "readinessChecker", "uid": "1",
                              "groups": ["system:authenticated"]},
                     "SourceIps": ["10.200.0.38"]}]


def test_sql_and_csv(corpus_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run_cli("query", "--sql", "--csv", "--log", corpus_log,
                   "SELECT Type, count(*) AS n FROM AuditEvents GROUP BY Type "
                   "ORDER BY n DESC, Type LIMIT 2") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["Type", "n"], ["AADServicePrincipalSignInLogs", "25"],
                    ["MicrosoftGraphActivityLogs", "25"]]


def test_table_output(corpus_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run_cli("query", "AzureActivity | project Caller, ActivityStatusValue",
                   "--log", corpus_log) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == ["Caller            ActivityStatusValue",
                                    "----------------  -------------------",
                                    "user@example.com  Start"]
    assert "(1 row)" in out.err


@pytest.mark.parametrize(("query", "language", "message"), [
    ("AzureActivity | wherex", "kql", "KQL does not parse at line 1, column 15"),
    ("AzureActivity\n| where (Caller == ", "kql", "KQL does not parse at line 2"),
    ("AzureActivity | evaluate bag_unpack(Properties)", "kql",
     "KQL construct not supported: EvaluateOperator"),
    ("AzureActivity | where NoSuchColumn == 1", "kql", 'column "NoSuchColumn" not found'),
    ("NoSuchTable | take 1", "kql", "NoSuchTable"),
    (".drop table AzureActivity", "kql", "KQL construct not supported"),
    ("SELEC 1", "sql", "SQL does not parse"),
    ("SELECT 1; SELECT 2", "sql", "exactly one SELECT statement, not 2"),
], ids=["kql-syntax", "kql-syntax-line-2", "kql-unsupported", "unknown-column",
        "unknown-table", "kql-control-command", "sql-syntax", "two-statements"])
def test_bad_queries_are_one_clear_error(corpus_log: Path, capsys: pytest.CaptureFixture[str],
                                         query: str, language: str, message: str) -> None:
    capsys.readouterr()
    flags = ["--sql"] if language == "sql" else []
    assert run_cli("query", query, *flags, "--log", corpus_log) == 7
    err = capsys.readouterr().err
    assert err.startswith("auditseal: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("statement", [
    "INSERT INTO _events SELECT * FROM _events",
    "UPDATE _events SET Caller = 'mallory'",
    "DELETE FROM _events",
    "COPY _events TO '{tmp}/out.csv'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t AS SELECT 1",
    "DROP TABLE _events",
    "SET enable_external_access = true",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "WITH x AS (SELECT 1) INSERT INTO _events SELECT * FROM _events",
], ids=lambda s: s.split()[0] + ("-" + s.split()[1] if s.startswith(("CREATE", "WITH")) else ""))
def test_sql_writes_are_refused_and_change_nothing(corpus_log: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   statement: str) -> None:
    log = load_log(corpus_log)
    update_index(log)
    before = hashlib.sha256(index_path(log).read_bytes()).hexdigest()
    head = (corpus_log / "checkpoint").read_bytes()
    capsys.readouterr()
    code = run_cli("query", "--sql", statement.format(tmp=tmp_path), "--log", corpus_log)
    err = capsys.readouterr().err
    assert code == 7
    assert "read-only" in err or "one SELECT" in err
    assert hashlib.sha256(index_path(log).read_bytes()).hexdigest() == before
    assert (corpus_log / "checkpoint").read_bytes() == head
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("select", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('{log}/.auditseal/signing.key')",
    "SELECT * FROM glob('/*')",
], ids=["read_csv", "read-signing-key", "glob"])
def test_selects_cannot_touch_files(corpus_log: Path, capsys: pytest.CaptureFixture[str],
                                    select: str) -> None:
    capsys.readouterr()
    assert run_cli("query", "--sql", select.format(log=corpus_log), "--log", corpus_log) == 7
    assert "file system operations are disabled" in capsys.readouterr().err


def test_kql_translation_never_writes() -> None:
    sql = translate_kql("AzureActivity | where Caller has 'x' | take 1")
    assert sql.lstrip().upper().startswith(("WITH", "SELECT"))


def test_prove_json_proofs_verify_with_proof_verify(corpus_log: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    log = load_log(corpus_log)
    rows = query_json(capsys, HARRY, "--log", corpus_log, "--prove")
    assert isinstance(rows, list)
    assert len(rows) >= 4
    for row in rows:
        proof = tmp_path / f"{row['_LogIndex']}.tlog-proof"
        proof.write_text(row["_Proof"])
        capsys.readouterr()
        assert run_cli("proof", "verify", proof, "--key", log.verifier_key, "--json") == 0
        verified = orjson.loads(capsys.readouterr().out)
        assert verified["index"] == row["_LogIndex"]
        assert verified["event"]["properties"]["userPrincipalName"] == row["UserPrincipalName"]


def test_prove_directory_for_an_auditor(corpus_log: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    log = load_log(corpus_log)
    bundle = tmp_path / "proofs"
    capsys.readouterr()
    assert run_cli("query", "AuditLogs | take 3 | project OperationName, _LogIndex",
                   "--log", corpus_log, "--prove", "--proof-dir", bundle) == 0
    out = capsys.readouterr()
    assert "3 of 3 rows proven and verified" in out.err
    results = orjson.loads((bundle / "results.json").read_bytes())
    assert (bundle / "checkpoint").read_bytes() == (corpus_log / "checkpoint").read_bytes()
    for row in results:
        assert run_cli("proof", "verify", bundle / row["_Proof"], "--key",
                       log.verifier_key) == 0


def test_prove_refuses_an_edited_index_row(corpus_log: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    log = load_log(corpus_log)
    update_index(log)
    good = index_path(log).read_bytes()
    try:
        with duckdb.connect(str(index_path(log))) as con:
            con.execute("UPDATE _events SET CallerIpAddress = '192.0.2.66' "
                        "WHERE _LogIndex = (SELECT min(_LogIndex) FROM _events "
                        "WHERE Type = 'SigninLogs')")
        capsys.readouterr()
        assert run_cli("query", HARRY, "--log", corpus_log, "--prove", "--json") == 1
        captured = capsys.readouterr()
    finally:
        index_path(log).write_bytes(good)
    assert captured.out == ""
    assert "index disagrees with the log" in captured.err
    assert "CallerIpAddress" in captured.err


def test_prove_needs_the_log_index_column(corpus_log: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run_cli("query", "AuditLogs | project OperationName | take 1", "--log", corpus_log,
                   "--prove") == 7
    assert "_LogIndex" in capsys.readouterr().err


def test_aggregates_are_shown_unproven(corpus_log: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rows = query_json(capsys, "AuditEvents | summarize n = count(), _LogIndex = min(_LogIndex) "
                      "by Type | where Type == 'AzureActivity'", "--log", corpus_log, "--prove")
    assert isinstance(rows, list)
    assert rows[0]["_LogIndex"] == 138
    assert rows[0]["_Proof"].startswith("c2sp.org/tlog-proof@v1\n")


@pytest.mark.parametrize(("value", "kind", "expected"), [
    (None, "VARCHAR", None),
    ('{"a": [1]}', "JSON", {"a": [1]}),
    ("not json", "JSON", "not json"),
], ids=["null", "json", "json-invalid"])
def test_json_value(value: object, kind: str, expected: object) -> None:
    assert json_value(value, kind) == expected
