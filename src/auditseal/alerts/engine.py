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
   without a gate, are evaluated (:mod:`auditseal.alerts.gates`), the lookups memoized per
   combination of values, with the verdicts of the rules that read nothing else
   (:mod:`auditseal.alerts.selection`). Every field the log's rules read is found in one
   walk of the record, planned once per key shape (:mod:`auditseal.alerts.resolver`), and
   shared by all rules; so are the keywords its text holds (:mod:`auditseal.alerts.keywords`);
3. feeds matches to correlations and new-value rules, and suppresses an alert whose rule
   and group key (the caller for single-event rules, the ``group-by`` values for
   correlations) fired less than ``suppress_window_s`` before, in event time; an alert that
   goes out is explained once per rule and values read (:mod:`auditseal.alerts.explanations`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from auditseal.alerts.correlation import CorrelationState, Fired, NewValueState
from auditseal.alerts.explanations import Explainer
from auditseal.alerts.fields import (
    TIME_READS,
    EventView,
    FieldRef,
    as_text,
    compile_field,
    event_time,
)
from auditseal.alerts.gates import index_rules, programs, tables
from auditseal.alerts.matcher import Hit
from auditseal.alerts.screen import Screen
from auditseal.alerts.selection import Plan, Selector, in_rule_order
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
        byte_screen: pick the rules to evaluate from the raw bytes
            (:class:`~auditseal.alerts.screen.Screen`, one Aho-Corasick pass with
            ``ahocorasick-rs``; a no-op without it) instead of their gate fields, and skip
            decoding records that show no rule's needles. Off: measured (docs/benchmarks.md)
            it saves about what it costs on the realistic mix (every Entra record shows
            some needle, so few records skip decoding) and 5-15 % on the worst case.
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
        self._byte_screen = self.config.byte_screen
        self._buckets = index_rules(rules.rules)
        self._unscreened = index_rules([rules.rules[p] for p in sorted(self._screen.unscreened)])
        self._tables = {  # each log's gateless rules in rule order: no sorting per record
            service: dataclasses.replace(table, always=tuple(sorted(
                table.always, key=lambda rule: self._order[id(rule)])))
            for service, table in tables(self._buckets, programs(
                rules.rules, TIME_READS | _CALLER.reads, _correlation_fields(rules))).items()}
        self._selectors = {service: Selector(table, self._order)
                           for service, table in self._tables.items()}
        self._no_log = self._selectors[None]  # records of no log we know of
        self._correlations: dict[str, list[CorrelationState]] = {}
        self._states = [CorrelationState(spec) for spec in rules.correlations]
        self._closing = [state for state in self._states if state.spec.op in ("lt", "lte")]
        for state in self._states:
            for rule_id in set(state.spec.rule_ids):
                self._correlations.setdefault(rule_id, []).append(state)
        self._new_values = {rule.id: NewValueState(rule.id, rule.new_value)
                            for rule in rules.rules if rule.new_value is not None}
        self._after = {  # per rule: what a match leads to, looked up once
            id(rule): (rule.generate and rule.new_value is None, self._new_values.get(rule.id),
                       tuple(self._correlations.get(rule.id, ())))
            for rule in rules.rules}
        self._titles = {spec.id: spec for spec in rules.correlations}
        self._by_id = {rule.id: rule for rule in rules.rules}
        self._last_fired: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._now_s = 0.0
        self._explainer = Explainer()

    def candidates(self, view: EventView, hits: set[int] | None = None) -> list[CompiledRule]:
        """The rules worth evaluating on a record: its log's, past their gates.

        With ``hits`` (the byte screen's verdict on the raw record), the screened rules are
        those hits and only the rules the screen cannot judge go through the gate index.
        """
        if hits is None:
            selector = self._selectors.get(view.service, self._no_log)
            view.prefetch(selector.program)
            return [rule for rule, _ in selector.select(view)]
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
            found = in_rule_order(found, self._order)
        return found

    def process(self, index: int, event: bytes | Mapping[str, Any],
                received: datetime | None = None) -> list[Alert]:
        """Evaluate one sealed record; return the alerts it fired (after suppression).

        Args:
            index: the record's log index.
            event: its bytes as sealed (or the decoded object).
            received: when it was sealed: the time used when the record has none.

        Raises:
            FormatError: ``event`` is not a JSON object (bytes that show no rule's needles
                are not decoded: those give no alerts and no error).
        """
        if type(event) is bytes:
            raw: bytes | None = event
        elif isinstance(event, bytes | bytearray | memoryview):
            raw = bytes(event)
        else:
            raw = None
        if raw is not None:
            if self._byte_screen and raw.lstrip()[:1] == b"{":
                return self._process_screened(index, raw, received)
            event = _decode(index, raw)
        elif not isinstance(event, Mapping):
            raise FormatError(f"entry {index}: event is not a JSON object")
        self.stats.records += 1
        view = EventView(event, raw)
        selector = self._selectors.get(view.service, self._no_log)
        screen = selector.screen
        if screen is not None and raw is not None and not screen(raw):
            return []  # no rule of its log is a candidate: not even walked
        view.prefetch(selector.program)
        return self._evaluate(index, view, selector.select(view), received)

    def _process_screened(self, index: int, raw: bytes, received: datetime | None
                          ) -> list[Alert]:
        """:meth:`process` with the byte screen on (``EngineConfig.byte_screen``)."""
        screened = self._screen.hits(raw)
        if screened is not None and not screened and not self._screen.unscreened:
            self.stats.records += 1  # no rule can match: not even decoded
            return []
        event = _decode(index, raw)
        self.stats.records += 1
        view = EventView(event, raw)
        view.prefetch(self._selectors.get(view.service, self._no_log).program)
        candidates = self.candidates(view, screened)
        return self._evaluate(index, view, tuple((rule, None) for rule in candidates), received)

    def _evaluate(self, index: int, view: EventView, plan: Plan, received: datetime | None
                  ) -> list[Alert]:
        """The candidates' verdicts on a record, then correlations and suppression.

        ``plan``: the candidates with their verdicts when already known (a
        :class:`~auditseal.alerts.selection.Selector` settles those that read only its key).
        """
        if not plan:
            return []
        stats = self.stats
        stats.evaluated += len(plan)
        matched = [rule for rule, verdict in plan
                   if verdict or (verdict is None and rule.check(view))]
        if not matched:
            return []
        stats.matched += len(matched)
        when = view.time() or received  # only now: reading the time costs as much as a rule
        when_s = when.timestamp() if when is not None else self._now_s
        self._now_s = max(self._now_s, when_s)
        alerts = self._expire(when_s) if self._closing else []
        for rule in matched:
            generates, new_value, states = self._after[id(rule)]
            if generates:
                caller = view.values(_CALLER)
                group = (("caller", as_text(caller[0]) if caller else ""),)
                if not self._admit(rule.id, group, when_s):
                    continue  # explaining is the costly part: only for alerts that go out
                alerts.append(Alert(rule.id, rule.title, rule.level, "rule", (index,), when,
                                    group, self._explainer.hits(rule, view), rule.description))
            if new_value is not None:
                fired = new_value.observe(view, when_s, index)
                if fired is not None:
                    self._emit(self._from_fired(fired, "new_value", rule), when_s, alerts)
            for state in states:
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
        for state in self._closing:
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


def _decode(index: int, raw: bytes) -> dict[str, Any]:
    """The JSON object of a record's bytes.

    Raises:
        FormatError: the bytes are not JSON, or not an object.
    """
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"entry {index}: event is not JSON: {exc}") from exc
    if type(event) is not dict:
        raise FormatError(f"entry {index}: event is not a JSON object")
    return event


def _correlation_fields(rules: RuleSet) -> dict[str | None, list[FieldRef]]:
    """Per log, the fields correlations read from the records its rules match."""
    by_id = {rule.id: rule for rule in rules.rules}
    found: dict[str | None, list[FieldRef]] = {}
    for spec in rules.correlations:
        for rule_id in spec.rule_ids:
            rule = by_id.get(rule_id)
            if rule is None:
                continue
            names = [mapping.get(rule_id, name) for name, mapping in spec.group_by]
            names.append(spec.value_field.get(rule_id, ""))
            found.setdefault(rule.service, []).extend(
                compile_field(name) for name in names if name)
    return found


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
