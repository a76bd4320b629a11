"""The KQL rewrite pass: same rows as duckdb-kql's own SQL, and no rewrite where unsure.

Differential tests run each KQL query twice on the same read-only connection: as
:class:`Searcher` runs it (translated, then rewritten) and as duckdb-kql translated it (run
as SQL, no rewrite). Data: the shared corpus sealed through the real CLI (139 events over
nine tables), and a small index of synthetic rows on and around bucket boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import duckdb
import duckdb_kql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditseal.index import query as query_module
from auditseal.index import schema
from auditseal.index.duckdb_index import index_path, open_index, update_index
from auditseal.index.kql_rewrite import ColumnTypes, rewrite_sql
from auditseal.index.query import Searcher, translate_kql
from auditseal.log.local import load_log
from tests.index.test_index import CORPUS_FILES, seal


@pytest.fixture(scope="module")
def corpus_searcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    log = load_log(seal(tmp_path_factory.mktemp("corpus") / "log", CORPUS_FILES))
    update_index(log)
    with Searcher(index_path(log)) as searcher:
        yield searcher


# Synthetic Activity rows: every hour, minute and second boundary of a few days in 1969,
# 2000, 2025 and 2099, each at -1 us, 0 and +1 us, plus a NULL time.
_BOUNDARIES = f"""
INSERT INTO {schema.EVENTS_TABLE} (_LogIndex, Type, TimeGenerated, OperationName, Caller,
                                   _Event)
SELECT row_number() OVER (), 'AzureActivity', ts, 'MICROSOFT.X/' || (i % 5) || '/DELETE',
       'user' || (i % 7), json_object('n', i)
FROM (SELECT i, base + to_microseconds(i * step) + to_microseconds(d) AS ts
      FROM (VALUES (TIMESTAMP '1969-12-30'), (TIMESTAMP '2000-01-01'),
                   (TIMESTAMP '2025-12-31 22:00'), (TIMESTAMP '2099-12-31 20:00')) b(base),
           (VALUES (1000000), (60000000), (3600000000)) s(step), range(0, 60) r(i),
           (VALUES (-1), (0), (1)) e(d)
      UNION ALL SELECT 0, NULL)
"""


@pytest.fixture(scope="module")
def boundary_searcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    path = tmp_path_factory.mktemp("boundaries") / "index.duckdb"
    with open_index(path) as con:
        con.execute(_BOUNDARIES)
    with Searcher(path) as searcher:
        yield searcher


def _same_rows(searcher: Searcher, kql: str) -> tuple[str, str]:
    """Run ``kql`` rewritten and as translated; assert the rows match; both SQL texts."""
    original = translate_kql(kql)
    result = searcher.run(kql, max_rows=100_000)
    baseline = searcher.run(original, language="sql", max_rows=100_000)
    assert result.columns == baseline.columns
    assert result.types == baseline.types
    ordered = any(word in kql for word in ("order by", "sort by", "top "))
    rows, expected = list(result.rows), list(baseline.rows)
    if not ordered:
        rows, expected = sorted(rows, key=repr), sorted(expected, key=repr)
    assert rows == expected
    return original, result.sql


CORPUS_QUERIES = [
    ("has-varchar", 'AzureActivity | where OperationNameValue has "write"', "typeof"),
    ("has-sign-in", 'SigninLogs | where UserPrincipalName has "harry.potter" '
                    "| project TimeGenerated, UserPrincipalName, _LogIndex", "typeof"),
    ("has-json-column", 'AuditEvents | where Properties has "Succeeded"', "typeof"),
    ("string-operators", 'AuditEvents | where Caller !has "x" and Caller has_cs "user" '
                         'and Caller contains "example" and Type != "y"', "typeof"),
    ("bin-hour", "AuditEvents | summarize count() by Type, bin(TimeGenerated, 1h)", "epoch("),
    ("bin-day-then-filter", "AuditEvents | summarize n = count() by bin(TimeGenerated, 1d) "
                            "| where TimeGenerated >= datetime(2025-04-11)", "epoch("),
    ("bin-in-extend", "AuditEvents | extend t = bin(TimeGenerated, 7d), who = Caller "
                      '| where who has "user" | project t, who, _LogIndex', "epoch("),
    ("datetime-between", "AuditEvents | where TimeGenerated between "
                         "(datetime(2025-04-11T16:17:00Z) .. datetime(2025-04-15 10:16))",
     "try_strptime"),
    ("ordered", "AuditEvents | summarize n = count() by Type, bin(TimeGenerated, 30m) "
                "| order by n desc, Type asc, TimeGenerated asc", "epoch("),
    ("issue-query", 'AzureActivity | where OperationNameValue has "write" '
                    "| summarize count() by Caller, bin(TimeGenerated, 1h)", "typeof"),
]


@pytest.mark.parametrize(("kql", "removed"), [q[1:] for q in CORPUS_QUERIES],
                         ids=[q[0] for q in CORPUS_QUERIES])
def test_rewritten_queries_return_the_same_rows(corpus_searcher: Searcher, kql: str,
                                                removed: str) -> None:
    original, rewritten = _same_rows(corpus_searcher, kql)
    assert removed in original
    assert removed not in rewritten


@pytest.mark.parametrize("kql", [
    # A join's output columns are not tracked: the bin after it stays as translated.
    'AzureActivity | join kind=inner (AzureActivity | where Caller has "user") on '
    "CorrelationId | summarize count() by bin(TimeGenerated, 1h)",
    # A dynamic value of unknown type keeps its typeof() guard.
    'AuditEvents | extend p = _Event.properties | where p has "Succeeded"',
    # union: BY NAME over two views, types not tracked.
    'union AzureActivity, SigninLogs | where Caller has "user"',
], ids=["join", "dynamic-path", "union"])
def test_untracked_shapes_still_answer_the_same(corpus_searcher: Searcher, kql: str) -> None:
    _same_rows(corpus_searcher, kql)


@pytest.mark.parametrize("size", ["1s", "1m", "7m", "1h", "90m", "1d", "7d", "3600s"])
def test_bin_matches_at_bucket_boundaries(boundary_searcher: Searcher, size: str) -> None:
    kql = f"AzureActivity | summarize n = count() by bin(TimeGenerated, {size})"
    original, rewritten = _same_rows(boundary_searcher, kql)
    assert "time_bucket" in rewritten
    assert "epoch(" in original


def test_sub_second_bins_are_left_alone(boundary_searcher: Searcher) -> None:
    # duckdb-kql's double arithmetic and time_bucket's integers can disagree 1 us before
    # a sub-second boundary: not rewritten, so the answer stays what it was.
    original, rewritten = _same_rows(
        boundary_searcher, "AzureActivity | summarize count() by bin(TimeGenerated, 100ms)")
    assert rewritten == original


def test_a_failing_rewrite_falls_back_to_the_translation(
        corpus_searcher: Searcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_module, "rewrite_sql", lambda sql, _: "SELECT * FROM nowhere")
    kql = 'AzureActivity | where Caller has "user@" | project _LogIndex'
    result = corpus_searcher.run(kql)
    assert result.sql == translate_kql(kql)
    assert result.rows == ((138,),)


# -- the pass itself, with a fixed catalog ------------------------------------------------

_CATALOG: dict[str, ColumnTypes] = {
    "t": {"s": "VARCHAR", "j": "JSON", "ts": "TIMESTAMP", "n": "BIGINT"},
}
_HAS = ("CASE WHEN typeof({c}) = 'JSON' THEN coalesce(regexp_matches(coalesce({c} ->> '$', "
        "''), 'x'), FALSE) ELSE coalesce(regexp_matches({c}, 'x'), FALSE) END")
_BIN = ("to_timestamp(floor(epoch({c}) / epoch(INTERVAL '{w}')) * epoch(INTERVAL '{w}')) "
        "AT TIME ZONE 'UTC'")


def _rewrite(sql: str) -> str:
    return rewrite_sql(sql, lambda name: _CATALOG.get(name.lower()))


@pytest.mark.parametrize(("sql", "expected"), [
    (f'SELECT * FROM t WHERE {_HAS.format(c=chr(34) + "s" + chr(34))}',
     """SELECT * FROM t WHERE (coalesce(regexp_matches("s", 'x'), FALSE))"""),
    (f'SELECT * FROM t WHERE {_HAS.format(c=chr(34) + "J" + chr(34))}',
     """SELECT * FROM t WHERE (coalesce(regexp_matches(coalesce("J" ->> '$', ''), 'x'), """
     "FALSE))"),
    (f'WITH a AS (SELECT "s" AS "k" FROM "T") SELECT * FROM a WHERE '
     f'{_HAS.format(c=chr(34) + "k" + chr(34))}',
     """WITH a AS (SELECT "s" AS "k" FROM "T") SELECT * FROM a WHERE """
     """(coalesce(regexp_matches("k", 'x'), FALSE))"""),
    (f'SELECT {_BIN.format(c=chr(34) + "ts" + chr(34), w="1h")} AS "b" FROM t',
     """SELECT time_bucket(INTERVAL '1h', "ts", TIMESTAMP '1970-01-01') AS "b" FROM t"""),
    ("SELECT COALESCE(TRY_CAST('2026-01-10T01:02:03.5Z' AS TIMESTAMPTZ) AT TIME ZONE 'UTC', "
     "try_strptime(CAST('2026-01-10T01:02:03.5Z' AS VARCHAR), ['%Y%m%d'])) AS d",
     "SELECT TIMESTAMP '2026-01-10 01:02:03.500000' AS d"),
], ids=["varchar-keeps-else", "json-keeps-then", "through-cte-alias", "bin", "datetime"])
def test_rewrites(sql: str, expected: str) -> None:
    assert _rewrite(sql) == expected


_S, _T = chr(34) + "s" + chr(34), chr(34) + "ts" + chr(34)


@pytest.mark.parametrize("sql", [
    f"SELECT * FROM t WHERE {_HAS.format(c=chr(34) + 'n' + chr(34))}",
    f"SELECT * FROM t WHERE {_HAS.format(c=chr(34) + 'nope' + chr(34))}",
    f"SELECT * FROM u WHERE {_HAS.format(c=_S)}",
    f"SELECT * FROM t WHERE list_any(['a'], lambda s: {_HAS.format(c=_S)})",
    f'SELECT "n" AS "s" FROM t ORDER BY {_HAS.format(c=_S)}',
    f"SELECT * FROM t AS a JOIN t AS b ON true WHERE {_HAS.format(c=_S)}",
    f'WITH "t" AS (SELECT 1 AS "s") SELECT * FROM "t" WHERE {_HAS.format(c=_S)}',
    f"WITH RECURSIVE a AS (SELECT * FROM t) SELECT * FROM a WHERE {_HAS.format(c=_S)}",
    f"SELECT * FROM t WHERE {_HAS.format(c=_S)} -- comment",
    f"SELECT * FROM t WHERE ({_HAS.format(c=_S)}",
    f"SELECT {_BIN.format(c=_S, w='1h')} FROM t",
    f"SELECT {_BIN.format(c=_T, w='100ms')} FROM t",
    f"SELECT {_BIN.format(c=_T, w='0s')} FROM t",
    f"SELECT {_BIN.format(c=_T, w='1h')}::VARCHAR FROM t",
    "SELECT COALESCE(TRY_CAST('2026-02-30' AS TIMESTAMPTZ) AT TIME ZONE 'UTC', "
    "try_strptime(CAST('2026-02-30' AS VARCHAR), ['%Y%m%d']))",
    "SELECT COALESCE(TRY_CAST('2026-01-10T00:00:00+02:00' AS TIMESTAMPTZ) AT TIME ZONE 'UTC', "
    "try_strptime(CAST('2026-01-10T00:00:00+02:00' AS VARCHAR), ['%Y%m%d']))",
    "SELECT COALESCE(TRY_CAST('2026-01-10T00:00:00.1234567' AS TIMESTAMPTZ) AT TIME ZONE "
    "'UTC', try_strptime(CAST('2026-01-10T00:00:00.1234567' AS VARCHAR), ['%Y%m%d']))",
], ids=["bigint-column", "unknown-column", "unknown-table", "lambda-parameter",
        "order-by-alias", "join", "cte-shadows-table", "recursive-cte", "comment",
        "unbalanced", "bin-of-varchar", "bin-sub-second", "bin-zero", "bin-then-cast",
        "invalid-date", "offset", "seven-digits"])
def test_left_alone(sql: str) -> None:
    assert _rewrite(sql) == sql


def test_nested_guards_are_both_resolved() -> None:
    nested = (f"SELECT * FROM t WHERE CASE WHEN typeof({_S}) = 'JSON' THEN "
              f"{_HAS.format(c=chr(34) + 'j' + chr(34))} ELSE {_HAS.format(c=_S)} END")
    assert _rewrite(nested) == ("""SELECT * FROM t WHERE ((coalesce(regexp_matches("s", """
                                """'x'), FALSE)))""")


_LITERALS = st.tuples(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["date", "minutes", "seconds", "fraction"]),
    st.sampled_from(["T", " "]), st.booleans(), st.integers(1, 6))


def _literal(moment: datetime, shape: str, sep: str, zulu: bool, digits: int) -> str:
    text = moment.strftime("%Y-%m-%d") if moment.year >= 1000 else \
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    if shape != "date":
        text += f"{sep}{moment.hour:02d}:{moment.minute:02d}"
    if shape in ("seconds", "fraction"):
        text += f":{moment.second:02d}"
    if shape == "fraction":
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + ("Z" if zulu and shape != "date" else "")


@settings(max_examples=30, deadline=None)
@given(st.lists(_LITERALS, min_size=1, max_size=12))
def test_datetime_literals_keep_their_value(literals: list[tuple[datetime, str, str, bool,
                                                                 int]]) -> None:
    texts = [_literal(*literal) for literal in literals]
    kql = "print " + ", ".join(f"c{i} = datetime({t})" for i, t in enumerate(texts))
    original = str(duckdb_kql.to_sql(kql))
    rewritten = rewrite_sql(original, lambda _: None)
    assert "try_strptime" not in rewritten
    with duckdb.connect() as con:
        con.execute("SET TimeZone='UTC'")
        assert con.execute(rewritten).fetchall() == con.execute(original).fetchall()


def test_bin_equals_epoch_floor_over_two_centuries() -> None:
    # Whole-second sizes, 1900-2100, each time a bucket boundary -1 us, 0 or +1 us:
    # time_bucket from the epoch gives what duckdb-kql's double arithmetic gives.
    with duckdb.connect() as con:
        con.execute("CREATE TABLE times AS SELECT make_timestamp((hash(i) % 6311390400000000)"
                    "::BIGINT - 2208988800000000) AS raw FROM range(20000) r(i)")
        for size in ["1s", "7s", "1m", "13m", "1h", "90m", "1d", "7d", "30d"]:
            con.execute("CREATE OR REPLACE TABLE edges AS SELECT time_bucket(INTERVAL "
                        f"'{size}', raw, TIMESTAMP '1970-01-01') + to_microseconds(d) AS ts "
                        "FROM times, (VALUES (-1), (0), (1)) e(d)")
            sql = f'SELECT {_BIN.format(c=chr(34) + "ts" + chr(34), w=size)} AS "b" FROM edges'
            faster = rewrite_sql(sql, lambda _: {"ts": "TIMESTAMP"})
            assert faster.startswith("SELECT time_bucket("), size
            assert con.execute(faster).fetchall() == con.execute(sql).fetchall(), size
