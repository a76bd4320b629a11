"""The alert engine's field resolution and per-record loop as they were before the
one-walk resolver (auditseal.alerts.resolver) and the per-log gate tables.

Kept verbatim (one ``_walk`` per field and candidate path, keys folded per object; the
gate loop over buckets) as the reference the differential tests (test_resolver.py) hold
:class:`EventView` and :meth:`AlertEngine.process` to: the same values, in the same order,
for every field of every rule, and the same alerts, on every corpus record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from auditseal.alerts.engine import _CALLER, Alert, AlertEngine
from auditseal.alerts.fields import _TIME_PATHS, FieldRef, as_text, event_service
from auditseal.alerts.resolver import Path
from auditseal.alerts.sigma import CompiledRule
from auditseal.errors import FormatError
from auditseal.ingest.azure_times import parse_azure_time

_Folded = tuple[dict[str, str], tuple[str, ...]]
"""A JSON object's keys: lower-cased -> as spelled, and the lower-cased ones holding dots."""
_SHAPES: dict[tuple[str, ...], _Folded] = {}
_MAX_SHAPES = 4096


class ReferenceView:
    """One decoded record, with field values memoized for every rule that asks."""

    __slots__ = ("_decoded", "_folded", "_lowered", "_memo", "_raw", "_text", "event", "service")

    def __init__(self, event: Mapping[str, object], raw: bytes | None = None) -> None:
        """Wrap ``event`` (a decoded JSON object); ``raw`` is its bytes, when at hand."""
        self.event = event
        self._raw = raw
        self.service = event_service(event)
        self._memo: dict[str, tuple[object, ...]] = {}
        self._lowered: dict[str, tuple[str | None, ...]] = {}
        self._folded: dict[int, _Folded] = {}
        self._decoded: dict[int, object] = {}  # JSON held in strings, decoded once
        self._text: str | None = None

    def values(self, ref: FieldRef) -> tuple[object, ...]:
        """The values of ``ref`` in this record; empty when the field is absent."""
        found = self._memo.get(ref.key)
        if found is not None:
            return found
        out: list[object] = []
        for path in ref.candidates:
            if path[0].startswith("@"):
                derived = _derive(path[0], self)
                if derived is not None:
                    out.append(derived)
            else:
                self._walk(self.event, path, 0, out)
            if out and not ref.merge:
                break
        found = self._memo[ref.key] = tuple(out)
        return found

    def lowered(self, ref: FieldRef) -> tuple[str | None, ...]:
        """The values of ``ref`` as lower-case text (None for JSON null), for matching."""
        found = self._lowered.get(ref.key)
        if found is None:
            found = self._lowered[ref.key] = tuple(
                None if v is None else as_text(v).lower() for v in self.values(ref)
            )
        return found

    def text(self) -> str:
        """The whole record as lower-case JSON text, for Sigma keyword searches."""
        if self._text is None:
            raw = self._raw if self._raw is not None else orjson.dumps(self.event)
            self._text = raw.decode("utf-8", "replace").lower()
        return self._text

    def _walk(self, node: object, path: Path, depth: int, out: list[object]) -> None:
        while depth < len(path) and type(node) is dict:  # fast path: nested objects
            value = node.get(path[depth], _ABSENT)  # the spelling asked for, usually right
            if value is _ABSENT:
                spelled = self._fold(node)[0].get(path[depth].lower())
                if spelled is None:
                    break
                value = node[spelled]
            node, depth = value, depth + 1
        if depth == len(path):
            _emit(node, out)
            return
        if isinstance(node, dict):
            dotted = self._fold(node)[1]
            if dotted and depth + 1 < len(path):
                # Keys holding dots (claim URIs) span several segments of a dotted name.
                rest = ".".join(path[depth:]).lower()
                for key in dotted:
                    if rest == key or rest.startswith(key + "."):
                        self._walk(node[self._fold(node)[0][key]], path,
                                   depth + key.count(".") + 1, out)
                        return
        elif isinstance(node, list):
            for item in node:
                self._walk(item, path, depth, out)
        elif isinstance(node, str) and node.lstrip()[:1] in ("{", "["):
            # The decoded value stays referenced by the view, so the ids that key the
            # folded-key cache are never reused within this record.
            decoded = self._decoded.get(id(node), _ABSENT)
            if decoded is _ABSENT:
                try:
                    decoded = orjson.loads(node)
                except orjson.JSONDecodeError:
                    decoded = None
                self._decoded[id(node)] = decoded
            if decoded is not None:
                self._walk(decoded, path, depth, out)

    def _fold(self, node: dict[str, object]) -> _Folded:
        """The object's keys by lower-cased spelling, shared by every object of its shape."""
        folded = self._folded.get(id(node))
        if folded is None:
            shape = tuple(node)
            folded = _SHAPES.get(shape)
            if folded is None:
                if len(_SHAPES) >= _MAX_SHAPES:
                    _SHAPES.clear()  # why: bounded memory on streams of ever-new shapes
                keys = {key.lower(): key for key in shape}
                folded = _SHAPES[shape] = (keys, tuple(k for k in keys if "." in k))
            self._folded[id(node)] = folded
        return folded

    def first(self, path: Path) -> object:
        """The first value at a lower-cased path, or None."""
        out: list[object] = []
        self._walk(self.event, path, 0, out)
        return out[0] if out else None

    def time(self) -> datetime | None:
        """When the record says it happened, in UTC; None when it carries no readable time."""
        for path in _TIME_PATHS:
            found = self.first(path)
            if isinstance(found, str) and found.endswith("Z") and "T" in found:
                try:  # the common spelling, far cheaper than the general reader
                    return datetime.fromisoformat(found).astimezone(UTC)
                except ValueError:
                    pass
            parsed = parse_azure_time(found)
            if parsed is not None:
                return parsed
        return None


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


def _derive(name: str, view: ReferenceView) -> str | None:
    """Values Log Analytics computes at ingestion that the export does not hold."""
    if name == "@provider":  # "MICROSOFT.STORAGE/STORAGEACCOUNTS/..." -> "MICROSOFT.STORAGE"
        operation = view.first(("operationName",))
        if isinstance(operation, Mapping):
            operation = operation.get("value")
        return operation.split("/", 1)[0] if isinstance(operation, str) else None
    if name == "@result":  # Entra writes the AADSTS code: "0" is success
        found = view.first(("resultType",))
        if found is None:
            found = view.first(("properties", "status", "errorCode"))
        if found is None:
            return None
        code = as_text(found).strip()
        if code.isdigit():
            return "Success" if code == "0" else "Failure"
        return {"succeeded": "Success", "failed": "Failure"}.get(code.lower(), code)
    return None




class ReferenceEngine(AlertEngine):
    """:class:`AlertEngine` with the former ``process``/``candidates`` and view (no screen)."""

    def candidates(self, view: Any, hits: set[int] | None = None) -> list[CompiledRule]:
        """The former gate loop."""
        found: list[CompiledRule] = []
        buckets = self._buckets
        for service in (view.service, None) if view.service is not None else (None,):
            bucket = buckets.get(service)
            if bucket is None:
                continue
            found.extend(bucket.always)
            for index in bucket.gates.values():
                by_value, affixes = index.by_value, index.affixes
                for value in view.lowered(index.ref):
                    if value is None:
                        continue
                    if value in by_value:
                        found.extend(by_value[value])
                    for prefixes, suffixes, rule in affixes:
                        if value.startswith(prefixes) or value.endswith(suffixes):
                            found.append(rule)
        if len(found) > 1:
            unique = {self._order[id(rule)]: rule for rule in found}
            found = [unique[position] for position in sorted(unique)]
        return found

    def process(self, index: int, event: bytes | Mapping[str, Any],
                received: datetime | None = None) -> list[Alert]:
        """The former per-record loop."""
        raw = None
        if isinstance(event, bytes | bytearray | memoryview):
            raw = bytes(event)
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise FormatError(f"entry {index}: event is not JSON: {exc}") from exc
        if not isinstance(event, Mapping):
            raise FormatError(f"entry {index}: event is not a JSON object")
        self.stats.records += 1
        view: Any = ReferenceView(event, raw)
        candidates = self.candidates(view)
        if not candidates:
            return []
        self.stats.evaluated += len(candidates)
        matched = [rule for rule in candidates if rule.check(view)]
        if not matched:
            return []
        when = view.time() or received
        when_s = when.timestamp() if when is not None else self._now_s
        self._now_s = max(self._now_s, when_s)
        alerts = self._expire(when_s)
        for rule in matched:
            self.stats.matched += 1
            if rule.generate and rule.new_value is None:
                caller = view.values(_CALLER)
                group = (("caller", as_text(caller[0]) if caller else ""),)
                if not self._admit(rule.id, group, when_s):
                    continue
                _, hits = rule.explain(view)
                alerts.append(Alert(rule.id, rule.title, rule.level, "rule", (index,), when,
                                    group, tuple(hits), rule.description))
            new_value = self._new_values.get(rule.id)
            if new_value is not None:
                fired = new_value.observe(view, when_s, index)
                if fired is not None:
                    self._emit(self._from_fired(fired, "new_value", rule), when_s, alerts)
            for state in self._correlations.get(rule.id, ()):
                fired = state.observe(rule.id, view, when_s, index)
                if fired is not None:
                    self._emit(self._from_fired(fired, "correlation", None), when_s, alerts)
        return alerts
