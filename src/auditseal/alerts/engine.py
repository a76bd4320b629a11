"""The alert engine: every rule over every sealed record, live or over history.

Concept: *alert evaluation* (issue 4, "Rules are evaluated continuously as events are
sealed ... and on demand over history. Alerts are deduplicated/suppressed per rule and
group key for a configurable window"). The service hands :meth:`AlertEngine.process` each
``(log index, event)`` pair as it is sealed; ``auditseal alerts run`` feeds the same method
from the log (:func:`run_history`), so live and replayed alerts agree.

Per record the engine (why it stays within microseconds with hundreds of rules):

1. decodes the JSON once and classifies its log (``activitylogs``, ``signinlogs``, ...);
   rules of other logs are never looked at;
2. looks up the record's value of each *gate* field (``operationName`` for most Azure
   rules) in a dict from value to the rules that need it; only those, and the few rules
   without a gate, are evaluated; field values are resolved once and shared by all rules;
3. feeds matches to correlations and new-value rules, and suppresses an alert whose rule
   and group key (the caller for single-event rules, the ``group-by`` values for
   correlations) fired less than ``suppress_window_s`` before, in event time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from auditseal.alerts.correlation import CorrelationState, Fired, NewValueState
from auditseal.alerts.fields import EventView, FieldRef, as_text, compile_field, event_time
from auditseal.alerts.matcher import Hit
from auditseal.alerts.prefilter import Screen, screenable
from auditseal.alerts.sigma import CompiledRule, RuleSet
from auditseal.core.entry import decode_entry
from auditseal.errors import FormatError

__all__ = ["Alert", "AlertEngine", "EngineConfig", "run_history"]

_CALLER = compile_field("Caller")


@dataclass(frozen=True)
class EngineConfig:
    """How the engine suppresses repeats.

    Attributes:
        suppress_window_s: an alert of the same rule and group key within this many seconds
            (event time) of the last one is suppressed; 0 turns suppression off.
        byte_screen: pick the rules with exact needles from the raw bytes
            (:class:`~auditseal.alerts.prefilter.Screen`) instead of their gate fields. Off:
            measured (docs/benchmarks.md) it costs more than the gate lookups it saves while
            some rules of the set can only be judged by their gates.
    """

    suppress_window_s: float = 600.0
    byte_screen: bool = False

    def __post_init__(self) -> None:
        """Validate once."""
        if self.suppress_window_s < 0:
            raise ValueError("suppress_window_s must be >= 0")


@dataclass(frozen=True)
class Alert:
    """One fired alert: which rule, which records, and why."""

    rule_id: str
    title: str
    level: str
    kind: str  # "rule", "correlation" or "new_value"
    indexes: tuple[int, ...]
    time: datetime | None
    group: tuple[tuple[str, str], ...] = ()
    matches: tuple[Hit, ...] = ()
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form printed by ``alerts run --json``, sent to sinks and sealed."""
        return {
            "rule_id": self.rule_id,
            "title": self.title,
            "level": self.level,
            "kind": self.kind,
            "indexes": list(self.indexes),
            "time": None if self.time is None else self.time.isoformat().replace("+00:00", "Z"),
            "group": dict(self.group),
            "matches": [{"detection": h.detection, "field": h.field, "expected": h.expected,
                         "found": h.found} for h in self.matches],
            "description": self.description,
        }


@dataclass
class _GateIndex:
    ref: FieldRef
    by_value: dict[str, list[CompiledRule]] = dataclasses.field(default_factory=dict)
    affixes: list[tuple[tuple[str, ...], tuple[str, ...], CompiledRule]] = dataclasses.field(
        default_factory=list)


@dataclass
class _Bucket:
    always: list[CompiledRule] = field(default_factory=list)
    gates: dict[str, _GateIndex] = field(default_factory=dict)


def _index(rules: list[CompiledRule]) -> dict[str | None, _Bucket]:
    """Rules by log, then by gate field and value."""
    buckets: dict[str | None, _Bucket] = {}
    for rule in rules:
        bucket = buckets.setdefault(rule.service, _Bucket())
        if rule.gate is None:
            bucket.always.append(rule)
            continue
        gate = rule.gate
        index = bucket.gates.setdefault(gate.field.key, _GateIndex(gate.field))
        for value in gate.values:
            index.by_value.setdefault(value, []).append(rule)
        if gate.prefixes or gate.suffixes:
            index.affixes.append((gate.prefixes, gate.suffixes, rule))
    return buckets


@dataclass
class EngineStats:
    """Counters for people and benchmarks."""

    records: int = 0
    evaluated: int = 0
    matched: int = 0
    fired: int = 0
    suppressed: int = 0


class AlertEngine:
    """Evaluates a rule set over a stream of ``(log index, event)`` pairs."""

    def __init__(self, rules: RuleSet, config: EngineConfig | None = None) -> None:
        """Index the rules by log and gate value; open no windows yet."""
        self.rules = rules
        self.config = config or EngineConfig()
        self.stats = EngineStats()
        self._order = {id(rule): i for i, rule in enumerate(rules.rules)}
        self._screen = Screen([rule.needles for rule in rules.rules])
        self._buckets = _index(rules.rules)
        self._unscreened = _index([rules.rules[p] for p in sorted(self._screen.unscreened)])
        self._correlations: dict[str, list[CorrelationState]] = {}
        self._states = [CorrelationState(spec) for spec in rules.correlations]
        for state in self._states:
            for rule_id in set(state.spec.rule_ids):
                self._correlations.setdefault(rule_id, []).append(state)
        self._new_values = {rule.id: NewValueState(rule.id, rule.new_value)
                            for rule in rules.rules if rule.new_value is not None}
        self._titles = {spec.id: spec for spec in rules.correlations}
        self._by_id = {rule.id: rule for rule in rules.rules}
        self._last_fired: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._now_s = 0.0

    def candidates(self, view: EventView, hits: set[int] | None = None) -> list[CompiledRule]:
        """The rules worth evaluating on a record: its log's, past their gates.

        With ``hits`` (the byte screen's verdict on the raw record), the screened rules are
        those hits and only the rules the screen cannot judge go through the gate index.
        """
        found: list[CompiledRule] = []
        buckets = self._buckets
        if hits is not None:
            rules, service = self.rules.rules, view.service
            found = [rule for rule in (rules[p] for p in hits)
                     if rule.service is None or rule.service == service]
            buckets = self._unscreened
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
        if len(found) > 1:  # a rule may be reached twice (list values); keep rule order
            unique = {self._order[id(rule)]: rule for rule in found}
            found = [unique[position] for position in sorted(unique)]
        return found

    def process(self, index: int, event: bytes | Mapping[str, Any],
                received: datetime | None = None) -> list[Alert]:
        """Evaluate one sealed record; return the alerts it fired (after suppression).

        Args:
            index: the record's log index.
            event: its bytes as sealed (or the decoded object).
            received: when it was sealed: the time used when the record has none.

        Raises:
            FormatError: ``event`` is not a JSON object.
        """
        raw = None
        screened: set[int] | None = None
        if isinstance(event, bytes | bytearray | memoryview):
            raw = bytes(event)
            if self.config.byte_screen and screenable(raw) and raw.lstrip()[:1] == b"{":
                screened = self._screen.hits(raw)
                if not screened and not self._screen.unscreened:
                    self.stats.records += 1  # no rule can match: not even decoded
                    return []
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise FormatError(f"entry {index}: event is not JSON: {exc}") from exc
        if not isinstance(event, Mapping):
            raise FormatError(f"entry {index}: event is not a JSON object")
        self.stats.records += 1
        view = EventView(event, raw)
        candidates = self.candidates(view, screened)
        if not candidates:
            return []
        self.stats.evaluated += len(candidates)
        matched = [rule for rule in candidates if rule.check(view)]
        if not matched:
            return []
        when = view.time() or received  # only now: reading the time costs as much as a rule
        when_s = when.timestamp() if when is not None else self._now_s
        self._now_s = max(self._now_s, when_s)
        alerts = self._expire(when_s)
        for rule in matched:
            self.stats.matched += 1
            if rule.generate and rule.new_value is None:
                caller = view.values(_CALLER)
                group = (("caller", as_text(caller[0]) if caller else ""),)
                if not self._admit(rule.id, group, when_s):
                    continue  # explaining is the costly part: only for alerts that go out
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

    def feed(self, pairs: Iterable[tuple[int, bytes | Mapping[str, Any]]]) -> list[Alert]:
        """Process ``(log index, event)`` pairs in order (the service's streaming call)."""
        alerts: list[Alert] = []
        for index, event in pairs:
            alerts.extend(self.process(index, event))
        return alerts

    def flush(self) -> list[Alert]:
        """Close every open ``lt``/``lte`` window (end of a history run)."""
        return self._expire(float("inf"))

    def _expire(self, now_s: float) -> list[Alert]:
        alerts: list[Alert] = []
        for state in self._states:
            if state.spec.op in ("lt", "lte"):
                for fired in state.expire(now_s - 0.0):
                    self._emit(self._from_fired(fired, "correlation", None), fired.last_s, alerts)
        return alerts

    def _from_fired(self, fired: Fired, kind: str, rule: CompiledRule | None) -> Alert:
        if rule is None:
            spec = self._titles[fired.rule_id]
            title, level, description = spec.title, spec.level, spec.description
        else:
            title, level, description = rule.title, rule.level, rule.description
        when = datetime.fromtimestamp(fired.last_s, UTC) if fired.last_s > 0 else None
        return Alert(fired.rule_id, title, level, kind, fired.indexes, when, fired.group,
                     (), description)

    def _emit(self, alert: Alert, when_s: float, out: list[Alert]) -> None:
        if self._admit(alert.rule_id, alert.group, when_s):
            out.append(alert)

    def _admit(self, rule_id: str, group: tuple[tuple[str, str], ...], when_s: float) -> bool:
        """False when the rule fired for this group within the suppression window."""
        window = self.config.suppress_window_s
        key = (rule_id, group)
        last = self._last_fired.get(key)
        if window and last is not None and 0 <= when_s - last < window:
            self.stats.suppressed += 1
            return False
        self._last_fired[key] = when_s
        self.stats.fired += 1
        return True


def run_history(entries: Iterable[tuple[int, bytes]], engine: AlertEngine,
                since: datetime | None = None) -> Iterator[Alert]:
    """Evaluate sealed entries (``LogReader.entries()``) in order; yield alerts as they fire.

    Only entries of kind "event" are evaluated (auditseal's own alert and admin records are
    not alerted on). With ``since``, records older than it (by their own time, else their
    seal time) are skipped.
    """
    for index, raw in entries:
        entry = decode_entry(raw)
        if entry.header.kind != "event":
            continue
        if since is not None:
            try:
                decoded = orjson.loads(entry.event)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(decoded, dict):
                continue
            when = event_time(decoded) or entry.header.received
            if when < since:
                continue
            yield from _safe_process(engine, index, decoded, entry.header.received)
        else:
            yield from _safe_process(engine, index, entry.event, entry.header.received)
    yield from engine.flush()


def _safe_process(engine: AlertEngine, index: int, event: bytes | Mapping[str, Any],
                  received: datetime) -> list[Alert]:
    try:
        return engine.process(index, event, received)
    except FormatError:
        return []  # sealed records need not be JSON objects (raw text sources); nothing to match
