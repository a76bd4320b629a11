"""Read-only queries over the search index: KQL (through duckdb-kql) or DuckDB SQL.

Concept: the *search session*. A query runs on a DuckDB connection opened read-only, with
file system access, extension loading and configuration changes disabled, and only after
the statement was checked to be a single ``SELECT`` (``WITH ... SELECT`` included): three
independent fences, so a query can never write to the index, the log, or any file. KQL is
translated by ``duckdb_kql.to_sql`` with writes disallowed (translations of the same text
are cached: duckdb-kql's parser is pure Python and costs 3-6 ms a query), then made faster
by :mod:`auditseal.index.kql_rewrite` using the column types of this connection, and goes
through the same check. Should the rewritten SQL fail, the translation runs as it was, so
errors read as they always did.

The Log Analytics views (:mod:`auditseal.index.schema`) are created as TEMP views on each
connection, so their definitions come from this code, not from the (untrusted) index file.

Every failure of the query text becomes a :class:`~auditseal.errors.FormatError` naming
the position where there is one (KQL: line and column; SQL: DuckDB's ``LINE n`` marker).
"""

# ruff: noqa: S608 -- SQL here is assembled from the schema module's constant table and
# column names only; query text from users is never interpolated into it.

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from uuid import UUID

import duckdb
import duckdb_kql
import orjson

from auditseal.errors import ConfigError, FormatError, StorageUnavailable
from auditseal.index import schema
from auditseal.index.duckdb_index import Row, index_path, update_index
from auditseal.index.kql_rewrite import ColumnTypes, rewrite_sql
from auditseal.log.local import LocalLog

__all__ = [
    "DEFAULT_MAX_ROWS",
    "Language",
    "QueryResult",
    "Searcher",
    "check_read_only",
    "json_value",
    "open_searcher",
    "run_query",
    "translate_kql",
]

Language = Literal["kql", "sql"]
DEFAULT_MAX_ROWS = 10_000
"""Rows returned unless asked otherwise (Log Analytics caps results at 30,000)."""

_REWRITES_KEPT = 256  # per connection; the translations themselves are cached per process
_LOCKED_DOWN = {
    "enable_external_access": False,  # no COPY TO, ATTACH, read_csv('/etc/...'), INSTALL
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query.

    Attributes:
        columns: the column names.
        types: DuckDB type names ("VARCHAR", "TIMESTAMP", "JSON", "BIGINT", ...).
        rows: the rows, at most ``max_rows``.
        truncated: whether more rows were available.
        sql: the SQL that ran (the translation, for KQL).
    """

    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: tuple[Row, ...]
    truncated: bool
    sql: str

    def as_objects(self) -> list[dict[str, Any]]:
        """The rows as JSON-ready objects: JSON columns parsed, times as RFC 3339 UTC."""
        return [
            {name: json_value(value, kind) for name, kind, value in
             zip(self.columns, self.types, row, strict=True)}
            for row in self.rows
        ]


@functools.lru_cache(maxsize=256)
def translate_kql(text: str) -> str:
    """The DuckDB SQL of a KQL query over the index's views (as duckdb-kql writes it).

    The result depends on ``text`` alone (the schema is this module's constant), so it
    is cached; ``translate_kql.cache_clear()`` empties the cache.

    Raises:
        FormatError: the KQL does not parse, or uses what duckdb-kql does not translate
            (the message names the line and column), or would write.
    """
    try:
        translated = duckdb_kql.to_sql(text, schema=schema.kql_schema(), allow_write=False)
    except duckdb_kql.KqlSyntaxError as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        if first is None:
            raise FormatError(f"KQL does not parse: {exc}") from None
        raise FormatError(
            f"KQL does not parse at line {first.span.line}, column {first.span.column + 1}: "
            f"{first.message}\n{_caret(text, first.span.line, first.span.column)}"
        ) from None
    except duckdb_kql.KqlUnsupportedError as exc:
        where = ""
        if exc.span is not None:
            where = (f" at line {exc.span.line}, column {exc.span.column + 1}\n"
                     f"{_caret(text, exc.span.line, exc.span.column)}")
        hint = f" ({exc.hint})" if exc.hint else ""
        raise FormatError(f"KQL construct not supported: {exc.construct}{hint}{where}"
                          ) from None
    except duckdb_kql.KqlError as exc:
        raise FormatError(f"KQL query rejected: {exc}") from None
    if translated.parameters:
        # Parameters come only from `declare query_parameters` or a pinned clock; we
        # supply neither, and inlining nothing keeps the SQL self-contained.
        raise FormatError("KQL query parameters (declare query_parameters, set query_now) "
                          "are not supported here")
    return str(translated)


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Accept exactly one SELECT statement (``WITH ... SELECT`` included), nothing else.

    Raises:
        FormatError: the SQL does not parse, holds several statements, or is not a SELECT
            (INSERT, UPDATE, DELETE, COPY, ATTACH, INSTALL, CREATE, SET, PRAGMA, ...).
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise FormatError(f"SQL does not parse: {_duckdb_message(exc)}") from None
    if len(statements) != 1:
        raise FormatError(f"give exactly one SELECT statement, not {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise FormatError(f"queries are read-only: {kind.name} statements are not allowed, "
                          "only SELECT (or WITH ... SELECT)")


class Searcher:
    """A read-only, locked-down connection to an index file, with the views in place."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` read-only.

        Raises:
            ConfigError: there is no index file.
            StorageUnavailable: another process is writing the index.
        """
        if not path.exists():
            raise ConfigError(f"no search index at {path}: run 'auditseal index rebuild'")
        try:
            self._con = duckdb.connect(str(path), read_only=True, config=dict(_LOCKED_DOWN))
        except duckdb.IOException as exc:
            raise StorageUnavailable(f"search index {path} is busy: {exc}") from None
        self._con.execute("SET TimeZone='UTC'")  # KQL datetimes are UTC (duckdb-kql R8)
        for statement in schema.view_statements():
            self._con.execute(statement)
        self._con.execute("SET lock_configuration = true")
        self._columns: dict[str, ColumnTypes | None] = {}
        self._rewritten: dict[str, str] = {}  # translation -> rewrite, on this connection

    def run(self, text: str, *, language: Language = "kql",
            max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
        """Run one query and fetch at most ``max_rows`` rows.

        Raises:
            FormatError: the query does not parse, is not read-only, or fails (unknown
                table or column, bad cast).
        """
        translated = translate_kql(text) if language == "kql" else text
        sql = self._rewrite(translated) if language == "kql" else text
        origin = "the SQL translated from your KQL" if language == "kql" else "the SQL"
        try:
            try:
                check_read_only(self._con, sql)
                description, rows = self._fetch(sql, max_rows)
            except (duckdb.Error, FormatError):
                if sql == translated:
                    raise
                self._con.abort()  # run the translation as it was: its own answer or error
                sql = translated
                check_read_only(self._con, sql)
                description, rows = self._fetch(sql, max_rows)
        except duckdb.Error as exc:
            self._con.abort()
            raise FormatError(f"query failed in {origin}: {_duckdb_message(exc)}") from None
        self._con.abort()  # drop any rows beyond max_rows
        return QueryResult(
            columns=tuple(str(column[0]) for column in description),
            types=tuple(str(column[1]) for column in description),
            rows=tuple(tuple(row) for row in rows[:max_rows]),
            truncated=len(rows) > max_rows,
            sql=sql,
        )

    def _rewrite(self, translated: str) -> str:
        """The translation made faster for this connection's column types (cached)."""
        if translated not in self._rewritten:
            if len(self._rewritten) >= _REWRITES_KEPT:
                self._rewritten.clear()
            self._rewritten[translated] = rewrite_sql(translated, self._column_types)
        return self._rewritten[translated]

    def _fetch(self, sql: str, max_rows: int) -> tuple[list[Any], list[Any]]:
        cursor = self._con.execute(sql)
        description = cursor.description or []
        return list(description), cursor.fetchmany(max_rows + 1)

    def _column_types(self, table: str) -> ColumnTypes | None:
        """The column types of a table or view of this connection (the rewrite's catalog).

        None when the name is unknown or ambiguous (a view and a table of the same name).
        """
        key = table.lower()
        if key not in self._columns:
            try:
                found = self._con.execute(
                    "SELECT database_name, schema_name, column_name, data_type FROM "
                    "duckdb_columns() WHERE lower(table_name) = ?", [key]).fetchall()
            except duckdb.Error:
                found = []  # no types: the SQL runs as translated
            columns: dict[str, str] = {}
            for _, _, name, kind in found:
                columns[str(name).lower()] = "?" if str(name).lower() in columns else str(kind)
            owners = {(database, schema_name) for database, schema_name, _, _ in found}
            self._columns[key] = columns if len(owners) == 1 else None
        return self._columns[key]

    def stored_rows(self, indexes: Sequence[int]) -> list[Row]:
        """The physical rows the index holds for these log indexes, in log order."""
        cursor = self._con.execute(
            f"SELECT * FROM {schema.EVENTS_TABLE} WHERE _LogIndex IN (SELECT unnest($1)) "
            "ORDER BY _LogIndex", [list(indexes)])
        return [tuple(row) for row in cursor.fetchall()]

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def open_searcher(log: LocalLog, *, update: bool = True) -> Searcher:
    """Bring the log's index up to its latest checkpoint (unless told not to) and open it."""
    if update:
        update_index(log)
    return Searcher(index_path(log))


def run_query(log: LocalLog, text: str, *, language: Language = "kql",
              max_rows: int = DEFAULT_MAX_ROWS, update: bool = True) -> QueryResult:
    """Feed the index, then run one read-only query over it."""
    with open_searcher(log, update=update) as searcher:
        return searcher.run(text, language=language, max_rows=max_rows)


def json_value(value: Any, kind: str = "") -> Any:
    """A DuckDB value as JSON: JSON columns parsed, datetimes RFC 3339 UTC with ``Z``."""
    if value is None:
        return None
    if kind == "JSON" and isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    if isinstance(value, date | time | UUID):
        return str(value) if not isinstance(value, date) else value.isoformat()
    if isinstance(value, timedelta):
        return _timespan(value)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def _timespan(value: timedelta) -> str:
    """KQL's timespan text, ``[-][d.]hh:mm:ss[.fffffff]``."""
    sign = "-" if value < timedelta(0) else ""
    total = abs(value)
    hours, rest = divmod(total.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    days = f"{total.days}." if total.days else ""
    fraction = f".{total.microseconds:06d}0" if total.microseconds else ""
    return f"{sign}{days}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"


def _caret(text: str, line: int, column: int) -> str:
    """The offending line of the query with a ``^`` under the position."""
    lines = text.splitlines() or [""]
    shown = lines[min(max(line, 1), len(lines)) - 1]
    return f"  {shown}\n  {' ' * max(column, 0)}^"


def _duckdb_message(error: duckdb.Error) -> str:
    """DuckDB's message without its "X Error:" prefix; LINE markers kept."""
    text = str(error).strip()
    head, _, rest = text.partition(": ")
    return rest if head.endswith("Error") and rest else text
