"""Sigma correlation rules over a stream of rule matches: counts, distinct values, sequences.

Concept: the *correlation windows* of the alert engine (issue 4; Sigma specification v2,
"Correlation rules"). A correlation watches the matches of the rules it references, per
group (the values of its ``group-by`` fields, renamed per rule by ``aliases``), over a
sliding window of ``timespan`` measured in event time, so a replay of history fires the
same alerts as the live stream did:

* ``event_count``: how many matching events; ``value_count``: how many distinct values of
  ``condition.field``; ``temporal``: how many of the referenced rules matched (all of them
  when the condition is the default); ``temporal_ordered``: all of them, in the listed order.
* ``gt``/``gte``/``eq``/``neq`` are checked as each match arrives; when they hold, the window
  fires with every event in it and starts afresh (so one burst is one alert, not one per
  event). ``lt``/``lte`` can only be decided when a window closes: ``expire`` checks the
  windows whose ``timespan`` has passed.

Also here, an auditseal extension that Sigma has no type for: *new value* (a rule carrying
``auditseal: {new-value: {field: F, group-by: [G]}}`` fires when a group shows a value of F
it has not shown before, once it has a history: "sign-in from a new country for a user").
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from auditseal.alerts.fields import EventView, FieldRef, as_text, compile_field

__all__ = ["CorrelationSpec", "CorrelationState", "Fired", "NewValueSpec", "NewValueState"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}
KINDS = frozenset({"event_count", "value_count", "temporal", "temporal_ordered"})


@dataclass(frozen=True)
class CorrelationSpec:
    """A correlation rule, resolved and validated.

    Attributes:
        rule_ids: the ids of the referenced rules, in the order listed.
        group_by: (group-by name, {rule id: field name}) pairs; a rule absent from the
            mapping reads the group-by name itself.
        timespan_s: the window length in seconds.
        op / count: the condition (``gte`` 10 ...); ``value_field`` names, per rule, the
            field whose distinct values ``value_count`` counts.
    """

    id: str
    title: str
    level: str
    description: str
    kind: str
    rule_ids: tuple[str, ...]
    group_by: tuple[tuple[str, dict[str, str]], ...]
    timespan_s: float
    op: str
    count: float
    value_field: dict[str, str] = field(default_factory=dict)
    require_all: bool = False


@dataclass(frozen=True)
class Fired:
    """A correlation (or new-value rule) whose condition held."""

    rule_id: str
    group: tuple[tuple[str, str], ...]
    indexes: tuple[int, ...]
    value: float
    first_s: float
    last_s: float


class _Window:
    """One group's open window: its events, and how many of them hold each value."""

    __slots__ = ("events", "opened_s", "values")

    def __init__(self, opened_s: float) -> None:
        # A plain dict, not a Counter: a window opens per group and per firing, and a
        # Counter costs a Python-level __init__ (the counts are kept >= 1 either way).
        self.events: deque[tuple[float, int, str]] = deque()
        self.values: dict[str, int] = {}
        self.opened_s = opened_s


class CorrelationState:
    """The open windows of one correlation, per group."""

    def __init__(self, spec: CorrelationSpec) -> None:
        """Start with no open windows."""
        self.spec = spec
        self._check = _OPS[spec.op]
        self._windows: dict[tuple[tuple[str, str], ...], _Window] = {}
        self._deadlines: list[tuple[float, tuple[tuple[str, str], ...]]] = []
        self._fields: dict[str, FieldRef] = {}
        self._closing = spec.op in ("lt", "lte")
        self._reads: dict[str, tuple[tuple[tuple[str, FieldRef | None], ...],
                                     FieldRef | None]] = {}
        """Per rule id: its group-by (name, field) pairs and its counted field, resolved once
        (None: no field name, read as "")."""

    def _reads_of(self, rule_id: str) -> tuple[tuple[tuple[str, FieldRef | None], ...],
                                               FieldRef | None]:
        spec = self.spec
        found = self._reads[rule_id] = (
            tuple((name, self._ref(mapping.get(rule_id, name))) for name, mapping in
                  spec.group_by),
            self._ref(spec.value_field.get(rule_id, "")) if spec.kind == "value_count"
            else None)
        return found

    def _ref(self, name: str) -> FieldRef | None:
        if not name:
            return None
        ref = self._fields.get(name)
        if ref is None:
            ref = self._fields[name] = compile_field(name)
        return ref

    def observe(self, rule_id: str, view: EventView, when_s: float, index: int) -> Fired | None:
        """Record that ``rule_id`` matched the record at ``index``; return what fired."""
        reads = self._reads.get(rule_id)
        group_by, counted = self._reads_of(rule_id) if reads is None else reads
        group = tuple([(name, "" if ref is None else _first_text(view, ref))
                       for name, ref in group_by])
        value = rule_id
        if counted is not None or self.spec.kind == "value_count":
            value = "" if counted is None else _first_text(view, counted)
            if not value:
                return None  # Sigma: events without the counted field are not counted
        window = self._windows.get(group)
        if window is None:
            window = self._windows[group] = _Window(when_s)
            if self._closing:
                heapq.heappush(self._deadlines, (when_s + self.spec.timespan_s, group))
        window.events.append((when_s, index, value))
        counts = window.values
        counts[value] = counts.get(value, 0) + 1
        if self._closing:
            return None  # a closing window is judged whole, from its first event
        if window.events[0][0] < when_s - self.spec.timespan_s:
            self._trim(window, when_s)
        measured = self._measure(window)
        if not self._check(measured, self.spec.count):
            return None
        del self._windows[group]
        return self._fired(group, window, measured)

    def expire(self, now_s: float) -> list[Fired]:
        """Close the ``lt``/``lte`` windows older than ``timespan`` and report those that held."""
        fired: list[Fired] = []
        while self._deadlines and self._deadlines[0][0] <= now_s:
            _, group = heapq.heappop(self._deadlines)
            window = self._windows.pop(group, None)
            if window is None:
                continue
            measured = self._measure(window)
            if self._check(measured, self.spec.count):
                fired.append(self._fired(group, window, measured))
        return fired

    def _measure(self, window: _Window) -> float:
        kind = self.spec.kind
        if kind == "event_count":
            return float(len(window.events))
        if kind == "value_count" or (kind == "temporal" and not self.spec.require_all):
            return float(len(window.values))
        if kind == "temporal":
            return 1.0 if len(window.values) == len(self.spec.rule_ids) else 0.0
        return 1.0 if self._in_order(window) else 0.0

    def _in_order(self, window: _Window) -> bool:
        """Whether the referenced rules matched in the listed order inside the window."""
        after = float("-inf")
        for rule_id in self.spec.rule_ids:
            times = [t for t, _, value in window.events if value == rule_id and t >= after]
            if not times:
                return False
            after = min(times)
        return True

    def _trim(self, window: _Window, now_s: float) -> None:
        if self.spec.op in ("lt", "lte"):
            return  # a closing window is judged whole, from its first event
        horizon = now_s - self.spec.timespan_s
        events = window.events
        while events and events[0][0] < horizon:
            _, _, value = events.popleft()
            left = window.values[value] - 1
            if left:
                window.values[value] = left
            else:
                del window.values[value]

    def _fired(self, group: tuple[tuple[str, str], ...], window: _Window, measured: float
               ) -> Fired:
        events = window.events
        return Fired(
            rule_id=self.spec.id,
            group=group,
            indexes=tuple(index for _, index, _ in events),
            value=measured,
            first_s=min((t for t, _, _ in events), default=window.opened_s),
            last_s=max((t for t, _, _ in events), default=window.opened_s),
        )


@dataclass(frozen=True)
class NewValueSpec:
    """auditseal extension: fire when a group shows a value it has not shown before."""

    field: str
    group_by: tuple[str, ...]


class NewValueState:
    """The values each group has shown so far (grows with groups x distinct values)."""

    def __init__(self, rule_id: str, spec: NewValueSpec) -> None:
        """Start with no history."""
        self.rule_id = rule_id
        self._field = compile_field(spec.field)
        self._group = tuple((name, compile_field(name)) for name in spec.group_by)
        self._names = tuple(name for name, _ in self._group)
        self._refs = tuple(ref for _, ref in self._group)
        self._one = self._refs[0] if len(self._refs) == 1 else None
        self._seen: dict[object, set[str]] = {}
        """Group -> its values: keyed by the group's text itself when there is one group-by
        field (why: no tuple built per record; the group tuple is built when one fires)."""

    def observe(self, view: EventView, when_s: float, index: int) -> Fired | None:
        """Learn the record's value; fire if it is new for a group that has a history."""
        values = view.lowered(self._field)
        if not values or values[0] is None:
            return None
        value = values[0]
        one = self._one
        key: object = (_first_text(view, one) if one is not None
                       else tuple([_first_text(view, ref) for ref in self._refs]))
        seen = self._seen.get(key)
        if seen is None:  # a group's first value is not new: it has no history yet
            self._seen[key] = {value}
            return None
        if value in seen:
            return None  # the common case: nothing changes
        seen.add(value)
        texts = cast(tuple[str, ...], (key,) if one is not None else key)
        group = tuple(zip(self._names, texts, strict=True))
        return Fired(self.rule_id, (*group, (self._field.name, value)), (index,), 1.0, when_s,
                     when_s)


def _first_text(view: EventView, ref: FieldRef) -> str:
    values = view.values(ref)
    if not values:
        return ""
    first = values[0]
    if type(first) is str:
        return first
    return as_text(first) if first is not None else ""
