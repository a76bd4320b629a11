"""Faster, equivalent SQL for three constructs duckdb-kql emits (issue 4: KQL overhead).

Concept: the *KQL rewrite pass*. duckdb-kql translates without column types, so its SQL is
right for every type; knowing the index's types, we pick the fast form where it is the same:

1. String operators (``has``, ``contains``, ``==``, ...) come as ``CASE WHEN typeof(c) =
   'JSON' THEN <unwrapped> ELSE <plain> END``. DuckDB folds the test at bind time but binds
   both branches first (a ``has`` compiles its regular expression twice, ~3-6 ms). For a
   VARCHAR or JSON ``c`` we keep the branch DuckDB's folding would keep.
2. ``bin(t, size)`` is ``to_timestamp(floor(epoch(t) / epoch(size)) * epoch(size)) AT TIME
   ZONE 'UTC'``, double arithmetic per row. For a TIMESTAMP ``t`` and a whole number of
   seconds it becomes ``time_bucket(size, t, TIMESTAMP '1970-01-01')``: the epoch-aligned
   floor KQL defines, in integers (the default origin, 2000-01-03, is not aligned to 7-day
   buckets). They agree exactly for times in ~1827-2112 (two double roundings of a
   microsecond count); beyond that, and for sub-second sizes (left alone), the double form
   can put the microsecond before a boundary into the next bucket.
3. ``datetime(s)`` is ``COALESCE(TRY_CAST(s AS TIMESTAMPTZ) AT TIME ZONE 'UTC',
   try_strptime(s, [9 formats]))``. For a valid ISO 8601 ``s`` (no offset or ``Z``, at most
   6 fractional digits) the first branch always succeeds and, under the search session's
   ``TimeZone='UTC'`` (duckdb-kql's TRANSLATION.md R8), equals ``TIMESTAMP s``.

Types come from a *catalog* (table or view -> column types; :class:`Searcher` asks the
connection the query runs on) and follow duckdb-kql's chain of CTEs through each ``SELECT``
over one named source. Anything else (joins, unions, lambda parameters that could shadow a
column, ``ORDER BY``/``HAVING`` that may name an output alias, text the tokenizer does not
know) leaves the SQL as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

__all__ = ["Catalog", "ColumnTypes", "rewrite_sql"]

ColumnTypes = Mapping[str, str]
"""Lower-case column name -> DuckDB type name (``"?"`` for a column of unknown type)."""
Catalog = Callable[[str], ColumnTypes | None]
"""Table or view name -> its column types, or None when unknown."""

_TOKEN = re.compile(r"""\s*(?:
    (?P<bad>--|/\*|\$|[eE]')
  | (?P<str>'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
  | (?P<op>->>|->|::|<=|>=|<>|!=|==|\|\||//|\*\*|[-+*/%<>=!~^&|(),.\[\]{}:;?@\#])
)""", re.VERBOSE)
_TRIGGERS = re.compile(r"typeof|to_timestamp|TRY_CAST", re.IGNORECASE)
_OPEN, _CLOSE = "([{", ")]}"
_LATE = {"order", "having", "qualify", "window", "limit", "offset"}
_CLAUSES = _LATE | {"where", "group"}
_NOT_SIMPLE = {"union", "intersect", "except", "join", "pivot", "unpivot", "sample",
               "tablesample", "using", "lateral", "on"}
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})"
                  r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?Z?")
_SPAN = re.compile(r"(\d+(?:\.\d+)?)([a-z]+)")
_UNIT_SECONDS: dict[tuple[str, ...], str] = {
    ("d", "day", "days"): "86400", ("h", "hr", "hour", "hours"): "3600",
    ("m", "min", "minute", "minutes"): "60", ("s", "sec", "second", "seconds"): "1",
    ("ms", "millisecond", "milliseconds"): "0.001"}
_SECONDS = {unit: Decimal(per) for units, per in _UNIT_SECONDS.items() for unit in units}
_BIN = ("to_timestamp", "(", "floor", "(", "epoch", "(", "QID", ")", "/", "epoch", "(",
        "INTERVAL", "STR", ")", ")", "*", "epoch", "(", "INTERVAL", "STR", ")", ")", "AT",
        "TIME", "ZONE", "'UTC'")
_GUARD = ("CASE", "WHEN", "typeof", "(", "QID", ")", "=", "'JSON'", "THEN")
_DATETIME = ("COALESCE", "(", "TRY_CAST", "(", "STR", "AS", "TIMESTAMPTZ", ")", "AT",
             "TIME", "ZONE", "'UTC'", ",", "try_strptime", "(", "CAST", "(", "STR", "AS",
             "VARCHAR", ")", ",", "[")


class _Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int
    key: str  # words case-folded, identifiers unquoted and case-folded (DuckDB's matching)


@dataclass(frozen=True)
class _Scope:
    """What the identifiers of one SELECT's tokens refer to."""

    columns: ColumnTypes | None  # the FROM source's columns; None when not known
    late: ColumnTypes | None  # the same for ORDER BY, HAVING, ... (aliases may win there)
    words: frozenset[str]  # bare words of the scope: lambda parameters may shadow columns


_OPAQUE = _Scope(None, None, frozenset())


def rewrite_sql(sql: str, catalog: Catalog) -> str:
    """The SQL with the three slow constructs replaced where provably equivalent.

    Args:
        sql: SQL as duckdb-kql emits it.
        catalog: column types of the tables and views the SQL may name.

    Returns:
        The rewritten SQL, or ``sql`` itself when nothing applies or the text holds
        anything the tokenizer does not know (comments, dollar quotes, escape strings).
    """
    if not _TRIGGERS.search(sql):
        return sql
    tokens = _tokenize(sql)
    if not tokens:
        return sql
    return _Rewriter(sql, tokens, catalog).run()


def _tokenize(sql: str) -> list[_Token] | None:
    tokens: list[_Token] = []
    position = 0
    for found in _TOKEN.finditer(sql):
        kind = found.lastgroup
        if found.start() != position or kind is None or kind == "bad":
            return None  # a character no token starts with, a comment, ...
        start, position = found.span(kind)
        text = sql[start:position]
        key = text.lower() if kind == "word" else text
        if kind == "qid":
            key = text[1:-1].replace('""', '"').lower()
        tokens.append(_Token(kind, text, start, position, key))
    return tokens if sql[position:].strip() == "" else None


class _Rewriter:
    def __init__(self, sql: str, tokens: list[_Token], catalog: Catalog) -> None:
        self.sql, self.tokens, self.catalog = sql, tokens, catalog
        self.scope: list[tuple[_Scope, bool]] = [(_OPAQUE, False)] * len(tokens)
        self.close: dict[int, int] = {}

    def run(self) -> str:
        stack: list[int] = []
        for index, token in enumerate(self.tokens):
            if token.text in _OPEN and token.kind == "op":
                stack.append(index)
            elif token.text in _CLOSE and token.kind == "op":
                if not stack:
                    return self.sql
                self.close[stack.pop()] = index
        if stack:
            return self.sql
        self._query(0, len(self.tokens), {})
        head, tail = self.tokens[0].start, self.tokens[-1].end
        return self.sql[:head] + self._render(0, len(self.tokens)) + self.sql[tail:]

    # -- types ----------------------------------------------------------------------------

    def _query(self, lo: int, hi: int, ctes: dict[str, ColumnTypes | None]
               ) -> ColumnTypes | None:
        """Mark the scopes of ``[lo, hi)`` (a WITH ... SELECT); its output columns."""
        tokens = self.tokens
        if lo < hi and tokens[lo].key == "with":
            ctes = dict(ctes)
            at = lo + 1
            if at < hi and tokens[at].key == "recursive":
                return None  # a CTE may name itself: every scope inside stays opaque
            while True:
                if at + 3 >= hi or tokens[at].kind not in ("word", "qid"):
                    return None
                name = tokens[at].key
                at += 1
                if tokens[at].key != "as":
                    return None
                at += 1
                at += tokens[at].key == "not"
                at += tokens[at].key == "materialized"
                if tokens[at].text != "(" or at not in self.close:
                    return None
                end = self.close[at]
                ctes[name] = self._query(at + 1, end, ctes)
                at = end + 1
                if at < hi and tokens[at].text == ",":
                    at += 1
                    continue
                break
            lo = at
        return self._select(lo, hi, ctes)

    def _select(self, lo: int, hi: int, ctes: dict[str, ColumnTypes | None]
                ) -> ColumnTypes | None:
        """Mark one SELECT's tokens (sub-queries recursively); its output columns."""
        tokens, depth, at = self.tokens, 0, lo
        own: list[int] = []  # indexes of this scope's tokens (sub-queries excluded)
        outer: list[int] = []  # the same at depth 0
        while at < hi:
            token = tokens[at]
            if token.kind == "op" and token.text in _OPEN:
                inner = tokens[at + 1].key if at + 1 < hi else ""
                if token.text == "(" and inner in ("select", "with"):
                    self._query(at + 1, self.close[at], ctes)
                    own.extend((at, self.close[at]))
                    if depth == 0:
                        outer.append(at)  # a FROM (SELECT ...) is not a named source
                    at = self.close[at] + 1
                    continue
                depth += 1
            elif token.kind == "op" and token.text in _CLOSE:
                depth -= 1
            own.append(at)
            if depth == 0 and not (token.kind == "op" and token.text in _CLOSE):
                outer.append(at)
            at += 1
        shape = self._shape(outer)
        if shape is None:
            for index in own:
                self.scope[index] = (_OPAQUE, False)
            return None
        source, late_at, star = shape
        columns = self._source(source, ctes)
        words = frozenset(tokens[i].key for i in own if tokens[i].kind == "word")
        scope = _Scope(columns, columns if star else None, words)
        for index in own:
            self.scope[index] = (scope, index >= late_at)
        return None if columns is None else self._output(lo, outer, columns, scope)

    def _shape(self, outer: list[int]) -> tuple[int, int, bool] | None:
        """(source token, first ORDER BY/HAVING/... token, select list is ``*``) of a
        single-source SELECT; None for any other shape."""
        tokens = self.tokens
        keys = [tokens[i].key for i in outer]
        if (not keys or keys[0] != "select" or keys.count("select") != 1
                or keys.count("from") != 1 or _NOT_SIMPLE & set(keys)
                or keys[1:3] == ["distinct", "on"]):
            return None
        at = keys.index("from")
        source = outer[at + 1] if at + 1 < len(outer) else -1
        rest = keys[at + 2:]
        if (source < 0 or tokens[source].kind not in ("word", "qid")
                or (rest and rest[0] not in _CLAUSES)):
            return None
        late = [outer[i] for i, key in enumerate(keys) if key in _LATE]
        late_at = late[0] if late else len(tokens)
        return source, late_at, keys[1:at] == ["*"]

    def _source(self, index: int, ctes: dict[str, ColumnTypes | None]) -> ColumnTypes | None:
        token = self.tokens[index]
        if token.key in ctes:
            return ctes[token.key]
        name = token.text[1:-1].replace('""', '"') if token.kind == "qid" else token.text
        return self.catalog(name)

    def _output(self, lo: int, outer: list[int], columns: ColumnTypes, scope: _Scope
                ) -> ColumnTypes | None:
        """The output columns of a single-source SELECT, from its select list."""
        tokens, result = self.tokens, dict[str, str]()
        start = lo + 1 + (tokens[lo + 1].key in ("distinct", "all"))
        stop = next(i for i in outer if tokens[i].key == "from")
        commas = [i for i in outer if start <= i < stop and tokens[i].text == ","]
        for first, last in zip([start, *(c + 1 for c in commas)], [*commas, stop],
                               strict=True):
            item = tokens[first:last]
            if [t.text for t in item] == ["*"]:
                pairs = list(columns.items())
            elif len(item) == 1 and item[0].kind == "qid":
                pairs = [(item[0].key, columns.get(item[0].key, "?"))]
            elif len(item) >= 3 and item[-2].key == "as" and item[-1].kind == "qid":
                kind = "?"
                if len(item) == 3 and item[0].kind == "qid":
                    kind = columns.get(item[0].key, "?")
                elif self._bin(first, scope) == last - 2:
                    kind = "TIMESTAMP"
                pairs = [(item[-1].key, kind)]
            else:
                return None
            for name, kind in pairs:
                result[name] = "?" if name in result else kind
        return result

    # -- rewriting ------------------------------------------------------------------------

    def _render(self, lo: int, hi: int) -> str:
        """The text of tokens ``[lo, hi)`` with every applicable rewrite made."""
        parts: list[str] = []
        at = lo
        copied = self.tokens[lo].start if lo < hi else 0
        while at < hi:
            done = self._replace(at, hi)
            if done is None:
                at += 1
                continue
            end, text = done
            parts.extend((self.sql[copied:self.tokens[at].start], text))
            copied = self.tokens[end].end
            at = end + 1
        return "".join(parts) + (self.sql[copied:self.tokens[hi - 1].end] if lo < hi else "")

    def _replace(self, at: int, hi: int) -> tuple[int, str] | None:
        """(last token, replacement text) of a rewrite starting at token ``at``."""
        tokens = self.tokens
        if at > 0 and tokens[at - 1].text in (".", "::", "+", "-"):
            return None  # a method call or a tighter-binding operator: leave it
        key = tokens[at].key
        scope, late = self.scope[at]
        columns = scope.late if late else scope.columns
        if key == "case" and columns is not None:
            return self._guard(at, hi, columns, scope)
        if key == "to_timestamp" and columns is not None:
            end = self._bin(at, scope, late=late)
            if end is not None:
                size, column = tokens[at + 12].text, tokens[at + 6].text
                return end, f"time_bucket(INTERVAL {size}, {column}, TIMESTAMP '1970-01-01')"
        if key == "coalesce" and _match(tokens, at, _DATETIME) is not None:
            # ... '%Y%m%d'])) : the format list closes, then try_strptime, then COALESCE.
            end = self.close[at + 1]
            formats_end = self.close[at + 22]
            moment = _iso(tokens[at + 4].text)
            if (moment is not None and tokens[at + 4].text == tokens[at + 17].text
                    and self.close[at + 14] == formats_end + 1 and end == formats_end + 2):
                return end, f"TIMESTAMP '{moment}'"
        return None

    def _guard(self, at: int, hi: int, columns: ColumnTypes, scope: _Scope
               ) -> tuple[int, str] | None:
        """``CASE WHEN typeof(c) = 'JSON' THEN a ELSE b END`` -> ``(a)`` or ``(b)``."""
        tokens = self.tokens
        then = _match(tokens, at, _GUARD)
        if then is None:
            return None
        column = tokens[at + 4].key
        kind = columns.get(column)
        if kind not in ("VARCHAR", "JSON") or column in scope.words:
            return None
        branches: list[tuple[int, int]] = []
        nesting, index, start = 0, then + 1, then + 1
        while index < hi:
            key = tokens[index].key
            if index in self.close:
                index = self.close[index] + 1
                continue
            if key == "case":
                nesting += 1
            elif key == "end" and nesting:
                nesting -= 1
            elif nesting == 0 and key in ("else", "end", "when"):
                expected = "else" if not branches else "end"
                if key != expected:
                    return None  # a second WHEN, or no ELSE: not duckdb-kql's guard
                branches.append((start, index))
                start = index + 1
                if key == "end":
                    break
            index += 1
        if len(branches) != 2 or index >= hi:  # THEN and ELSE
            return None
        lo, end = branches[0] if kind == "JSON" else branches[1]
        return index, f"({self._render(lo, end)})"

    def _bin(self, at: int, scope: _Scope, *, late: bool = False) -> int | None:
        """The last token of a rewritable epoch ``bin()`` starting at ``at``, else None."""
        tokens = self.tokens
        end = _match(tokens, at, _BIN)
        columns = scope.late if late else scope.columns
        if end is None or columns is None or tokens[at + 12].text != tokens[at + 19].text:
            return None
        column = tokens[at + 6].key
        if columns.get(column) != "TIMESTAMP" or column in scope.words:
            return None
        following = tokens[end + 1].key if end + 1 < len(tokens) else ""
        if following in ("::", "[", ".", "collate") or not _whole_seconds(tokens[at + 12]):
            return None
        return end


def _match(tokens: list[_Token], at: int, pattern: tuple[str, ...]) -> int | None:
    """The index of the last token when ``tokens[at:]`` starts with ``pattern``.

    ``QID`` matches a quoted identifier, ``STR`` a string literal, anything else the token's
    text (case-insensitively for words).
    """
    if at + len(pattern) > len(tokens):
        return None
    for offset, want in enumerate(pattern):
        token = tokens[at + offset]
        if want == "QID":
            ok = token.kind == "qid"
        elif want == "STR":
            ok = token.kind == "str"
        else:
            ok = token.text.lower() == want.lower()
        if not ok:
            return None
    return at + len(pattern) - 1


def _iso(literal: str) -> str | None:
    """The canonical ``YYYY-MM-DD HH:MM:SS[.ffffff]`` of a strict ISO 8601 UTC literal."""
    found = _ISO.fullmatch(literal[1:-1])
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(p) if p else 0 for p in found.groups()[:6])
    fraction = int((found.group(7) or "").ljust(6, "0"))
    try:  # naive on purpose: the index keeps UTC as naive TIMESTAMPs
        moment = datetime(year, month, day, hour, minute, second, fraction)
    except ValueError:
        return None  # 2026-02-30: TRY_CAST is NULL there, TIMESTAMP '...' an error
    return moment.isoformat(sep=" ")


def _whole_seconds(literal: _Token) -> bool:
    """Whether an ``INTERVAL '<n><unit>'`` literal is a positive whole number of seconds."""
    found = _SPAN.fullmatch(literal.text[1:-1])
    if found is None or found.group(2) not in _SECONDS:
        return False
    try:
        seconds = Decimal(found.group(1)) * _SECONDS[found.group(2)]
    except InvalidOperation:
        return False
    return seconds > 0 and seconds == seconds.to_integral_value()
