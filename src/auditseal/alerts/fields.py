"""Field names of Sigma rules, resolved against the Azure audit records we seal.

Concept: the *field mapping* of the alert engine (issue 4, "against the field names those
rules use on Azure logs"; docs/azure.md sections 3.4-3.5 and 5.2). SigmaHQ's Azure rules name
fields three ways, often in one rule: as the diagnostic-export JSON has them
(``operationName``, ``properties.message``), as Log Analytics columns (``ResultType``,
``OperationNameValue``, ``AuthenticationRequirement``, ``TargetResources``) and in spellings
of their own (``Status``, ``Initiatedby``). A field resolves, in order:

1. through :data:`ALIASES`, for Log Analytics columns whose value lives elsewhere in the
   export (``CategoryValue`` -> ``category`` or REST ``category.value``; ``Status`` -> the
   sign-in result, its failure reason and the audit ``result``);
2. as a dotted path from the record's root, then from ``properties`` (Log Analytics
   flattens the ``properties`` of a record into columns, so ``DeviceDetail.deviceId`` is
   ``properties.deviceDetail.deviceId``).

Keys match case-insensitively (``ResultType`` is ``resultType``; Azure itself mixes
``Level``/``level``). Lists on the way fan out (any element may match, as Sigma backends
treat multi-valued fields); strings on the way that hold JSON are decoded
(``properties.requestbody``, AKS ``properties.log``). Objects and lists at the end are also
offered as compact JSON text, so ``TargetResources|contains: Admin`` and
``NetworkLocationDetails: '[]'`` work as they do on Log Analytics' dynamic columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from auditseal.alerts.field_names import ALIASES, has_known_root
from auditseal.alerts.keywords import KEYWORDS
from auditseal.alerts.logs import event_service
from auditseal.alerts.resolver import Ends, Path, State, path_id, state_for, walk
from auditseal.ingest.azure_times import parse_azure_time

__all__ = [
    "ALIASES",
    "TIME_READS",
    "EventView",
    "FieldRef",
    "Program",
    "as_text",
    "compile_field",
    "compile_program",
    "event_service",
    "event_time",
    "is_known_field",
]

_OPERATION = path_id(("operationName",))
_RESULT = path_id(("resultType",))
_ERROR_CODE = path_id(("properties", "status", "errorCode"))
_DERIVED_FROM: dict[str, tuple[int, ...]] = {
    "@provider": (_OPERATION,), "@result": (_RESULT, _ERROR_CODE)}
"""The paths each derived value reads (kept in step with ``_derive``)."""


def _p(dotted: str) -> Path:
    return tuple(dotted.split("."))


def is_known_field(name: str) -> bool:
    """Whether ``name`` resolves to a field of some Azure record shape we know of.

    Used for the load report: a rule on an unknown field still loads, but it is reported,
    because it can only match if the records carry that field under exactly that name.
    """
    return name.lower() in ALIASES or has_known_root(name)


@dataclass(frozen=True)
class FieldRef:
    """A Sigma field name compiled to the paths it may be found at (lower-cased)."""

    name: str
    candidates: tuple[Path, ...]
    merge: bool
    """True: values of every candidate count; False: the first candidate found wins."""
    key: str = ""
    """The memo key: field names are case-insensitive."""
    steps: tuple[tuple[int, str | None], ...] = ()
    """Per candidate: its interned path id, and the name of a derived value (``@result``)."""
    reads: frozenset[int] = frozenset()
    """Every path id it may read (derived values' included): walked together when asked."""
    first_of: tuple[int, ...] = ()
    """Its candidate path ids when the first one found gives its values (else ())."""


def compile_field(name: str) -> FieldRef:
    """Compile a Sigma field name (dotted, any case) to its candidate paths."""
    alias = ALIASES.get(name.lower())
    if alias is not None:
        merge, candidates = alias[0], alias[1]
    else:
        path = _p(name)
        merge = False
        candidates = (path,) if path[0].lower() == "properties" else (path, ("properties", *path))
    steps = tuple((path_id(p), p[0] if p[0].startswith("@") else None) for p in candidates)
    reads = frozenset(pid for own, derived in steps
                      for pid in ((own,) if derived is None else _DERIVED_FROM.get(derived, ())))
    first_of = () if merge or any(derived for _, derived in steps) else tuple(
        pid for pid, _ in steps)
    return FieldRef(name, tuple(candidates), merge, name.lower(), steps, reads, first_of)


@dataclass(frozen=True)
class Program:
    """Paths walked together in one pass of a record (the fields of one log's rules)."""

    state: State
    ids: frozenset[int]


def compile_program(refs: Iterable[FieldRef], extra: frozenset[int] = frozenset()) -> Program:
    """One walk for every path ``refs`` may read, and the path ids ``extra``."""
    ids = extra.union(*(ref.reads for ref in refs))
    return Program(state_for(tuple((pid, 0) for pid in sorted(ids))), ids)


class EventView:
    """One decoded record, with field values memoized for every rule that asks."""

    __slots__ = ("_covered", "_decoded", "_ends", "_keywords", "_lowered", "_memo", "_raw",
                 "_text", "event", "service")

    def __init__(self, event: Mapping[str, object], raw: bytes | None = None) -> None:
        """Wrap ``event`` (a decoded JSON object); ``raw`` is its bytes, when at hand."""
        self.event = event
        self._raw = raw
        self.service = event_service(event)
        self._memo: dict[str, tuple[object, ...]] = {}
        self._lowered: dict[str, tuple[str | None, ...]] = {}
        self._ends: Ends = {}  # path id -> the nodes it reaches (walked paths that reach any)
        self._covered: frozenset[int] = _NONE  # path ids walked so far
        self._decoded: dict[int, object] = {}  # JSON held in strings, decoded once
        self._text: str | None = None
        self._keywords: tuple[int, frozenset[str]] | None = None

    def prefetch(self, program: Program) -> None:
        """Walk every path of ``program`` in one pass (before any lookup: the engine's)."""
        if self._covered:
            self._fetch(program.ids)
            return
        walk(self.event, program.state, self._ends, self._decoded)
        self._covered = program.ids

    @property
    def reached(self) -> Ends:
        """Path id -> the nodes it reached, for every walked path that reached any."""
        return self._ends

    def _fetch(self, ids: frozenset[int]) -> None:
        """Walk, in one pass, those of ``ids`` not walked yet (walking twice would repeat)."""
        key = (self._covered, ids)
        step = _FETCHES.get(key)
        if step is None:
            if len(_FETCHES) >= 4096:
                _FETCHES.clear()  # why: bounded memory whatever the fields asked
            missing = ids - self._covered
            step = _FETCHES[key] = (
                state_for(tuple((pid, 0) for pid in sorted(missing))) if missing else None,
                self._covered | missing)
        if step[0] is not None:
            walk(self.event, step[0], self._ends, self._decoded)
            self._covered = step[1]

    def values(self, ref: FieldRef) -> tuple[object, ...]:
        """The values of ``ref`` in this record; empty when the field is absent."""
        found = self._memo.get(ref.key)
        if found is not None:
            return found
        ends = self._ends
        first_of = ref.first_of
        if len(first_of) > 3 and ref.reads <= self._covered:
            # Many candidates (Caller's 17), all walked: the first reached, found in C.
            nodes = next(filter(None, map(ends.get, first_of)), None)
            if nodes is None:
                found = self._memo[ref.key] = ()
                return found
            out: list[object] = []
            for node in nodes:
                _emit(node, out)
            found = self._memo[ref.key] = tuple(out)
            return found
        if first_of:
            # The common case, every candidate walked: the first one that reached anything
            # gives the values (a reached path holds nodes, each giving at least one value).
            covered = self._covered
            for pid in first_of:
                nodes = ends.get(pid)
                if nodes is not None:
                    if len(nodes) == 1 and type(nodes[0]) is str:
                        found = self._memo[ref.key] = (nodes[0],)
                        return found
                    out = []
                    for node in nodes:
                        _emit(node, out)
                    found = self._memo[ref.key] = tuple(out)
                    return found
                if pid not in covered:
                    break  # not walked yet: the general way below walks it
            else:
                found = self._memo[ref.key] = ()
                return found
        out = []
        for pid, derived in ref.steps:
            if derived is not None:
                value = _derive(derived, self)
                if value is not None:
                    out.append(value)
            elif pid in ends or pid in self._covered:
                for node in ends.get(pid, ()):
                    if type(node) is str:
                        out.append(node)
                    else:
                        _emit(node, out)
            else:
                self._fetch(ref.reads)
                for node in ends.get(pid, ()):
                    _emit(node, out)
            if out and not ref.merge:
                break
        found = self._memo[ref.key] = tuple(out)
        return found

    def lowered(self, ref: FieldRef) -> tuple[str | None, ...]:
        """The values of ``ref`` as lower-case text (None for JSON null), for matching."""
        found = self._lowered.get(ref.key)
        if found is None:
            if ref.first_of:
                # The common case, one string at the first candidate path found (walked
                # already): one lower() away, without building the raw values first.
                covered, ends = self._covered, self._ends
                for pid in ref.first_of:
                    nodes = ends.get(pid)
                    if nodes is not None:
                        if len(nodes) == 1 and type(nodes[0]) is str:
                            found = self._lowered[ref.key] = (nodes[0].lower(),)
                            return found
                        break
                    if pid not in covered:
                        break
                else:  # every candidate walked, none reached: absent
                    found = self._lowered[ref.key] = ()
                    return found
            found = self._lowered[ref.key] = tuple(
                None if v is None else v.lower() if type(v) is str else as_text(v).lower()
                for v in self.values(ref)
            )
        return found

    def text(self) -> str:
        """The whole record as lower-case JSON text, for Sigma keyword searches."""
        if self._text is None:
            raw = self._raw if self._raw is not None else orjson.dumps(self.event)
            self._text = raw.decode("utf-8", "replace").lower()
        return self._text

    def keywords(self) -> frozenset[str]:
        """The registered Sigma keywords (:data:`~auditseal.alerts.keywords.KEYWORDS`) its
        text holds, scanned once (a keyword may also hide: see that module)."""
        memo = self._keywords
        if memo is None or memo[0] != KEYWORDS.version:
            raw = self._raw
            if self._text is None and raw is not None and raw.isascii():
                found = KEYWORDS.scan_ascii(raw.lower())  # why: no decoding, lower in C
            else:
                found = KEYWORDS.scan(self.text())
            memo = self._keywords = (KEYWORDS.version, found)
        return memo[1]

    def first(self, path: Path) -> object:
        """The first value at a path, or None."""
        return self._first(path_id(path))

    def _first(self, pid: int) -> object:
        if pid not in self._covered:
            self._fetch(frozenset((pid,)))
        nodes = self._ends.get(pid)
        if not nodes:
            return None
        out: list[object] = []
        _emit(nodes[0], out)  # never empty: a list or object is at least its JSON text
        return out[0]

    def time(self) -> datetime | None:
        """When the record says it happened, in UTC; None when it carries no readable time."""
        event = self.event
        if type(event) is dict:  # the common spelling, read as the walk would read it
            found = event.get("time")
            if type(found) is str and found.endswith("Z") and "T" in found:
                try:
                    stamp = datetime.fromisoformat(found)
                except ValueError:
                    pass  # the general way below tries the other readers
                else:  # "Z" gives UTC itself: converting would only copy it
                    return stamp if stamp.tzinfo is UTC else stamp.astimezone(UTC)
        if not self._covered >= _TIME_READS:  # the engine's programs walk them already
            self._fetch(_TIME_READS)
        for pid in _TIME_IDS:
            found = self._first(pid)
            if isinstance(found, str) and found.endswith("Z") and "T" in found:
                try:  # the common spelling, far cheaper than the general reader
                    return datetime.fromisoformat(found).astimezone(UTC)
                except ValueError:
                    pass
            parsed = parse_azure_time(found)
            if parsed is not None:
                return parsed
        return None


_NONE: frozenset[int] = frozenset()
_FETCHES: dict[tuple[frozenset[int], frozenset[int]], tuple[State | None, frozenset[int]]] = {}
"""(paths walked, paths asked) -> the state walking the rest, and the paths walked after."""


def as_text(value: object) -> str:
    """A field value as Sigma compares it: JSON spelling for booleans, decimal numbers."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_ABSENT = object()


def _emit(node: object, out: list[object]) -> None:
    if isinstance(node, list):
        out.extend(orjson.dumps(item).decode() if isinstance(item, dict | list) else item
                   for item in node)
        out.append(orjson.dumps(node).decode())
    elif isinstance(node, dict):
        value = node.get("value")
        if isinstance(value, str):  # REST shape: {"value": ..., "localizedValue": ...}
            out.append(value)
        out.append(orjson.dumps(node).decode())
    else:
        out.append(node)


def _derive(name: str, view: EventView) -> str | None:
    """Values Log Analytics computes at ingestion that the export does not hold."""
    if name == "@provider":  # "MICROSOFT.STORAGE/STORAGEACCOUNTS/..." -> "MICROSOFT.STORAGE"
        operation = view._first(_OPERATION)
        if isinstance(operation, Mapping):
            operation = operation.get("value")
        return operation.split("/", 1)[0] if isinstance(operation, str) else None
    if name == "@result":  # Entra writes the AADSTS code: "0" is success
        found = view._first(_RESULT)
        if found is None:
            found = view._first(_ERROR_CODE)
        if found is None:
            return None
        code = as_text(found).strip()
        if code.isdigit():
            return "Success" if code == "0" else "Failure"
        return {"succeeded": "Success", "failed": "Failure"}.get(code.lower(), code)
    return None


_TIME_PATHS: tuple[Path, ...] = (
    ("time",), ("TimeGenerated",), ("eventTimestamp",), ("properties", "createdDateTime"),
    ("properties", "activityDateTime"),
)


_TIME_IDS = tuple(path_id(path) for path in _TIME_PATHS)
_TIME_READS = frozenset(_TIME_IDS)
TIME_READS = _TIME_READS
"""The paths :meth:`EventView.time` reads (the engine walks them with a log's fields)."""


def event_time(event: Mapping[str, object]) -> datetime | None:
    """When the record says it happened, in UTC; None when it carries no readable time."""
    return EventView(event).time()
