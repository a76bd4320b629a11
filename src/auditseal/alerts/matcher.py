"""Sigma detection semantics, compiled to Python closures evaluated per record.

Concept: the *evaluator* of single-event Sigma rules (issue 4, "Alerts"; Sigma
specification v2, "Detection" and "Condition"). pySigma parses a rule and applies its value
modifiers; this module turns the result into closures once, so that a record costs only
the checks a rule needs:

* strings match case-insensitively (``|cased`` opts out); ``*`` and ``?`` are wildcards;
  plain values become one set lookup, ``contains``/``startswith``/``endswith`` become
  ``in``/``startswith``/``endswith`` on the lower-cased text and anything else a regex;
* ``re`` (with ``i``/``m``/``s`` flags) searches the original text; ``cidr`` parses the
  value as an IP address; ``gt``/``gte``/``lt``/``lte`` compare numbers; ``exists`` tests
  presence; ``null`` matches a missing or null field; ``windash``/``base64offset``
  expansions are OR-linked; ``fieldref`` compares with another field; ``all`` links values
  with AND; ``neq`` negates the item;
* a keyword (value without field) is searched in the whole record's JSON text;
* conditions: ``and``/``or``/``not``, parentheses, ``1 of x*``, ``all of x*``, ``them``.

Why not a pySigma backend: pySigma (2.0.1) ships no in-process evaluator, only backends
that emit queries for other engines (Splunk, Elastic, Kusto...). The third-party
in-process options found (``sigma-rule-matcher``, a learning project that re-evaluates a
boolean expression per event; ``pysigma-backend-pd-df``/``-duckdb``, which build pandas or
SQL queries over batches) have no notion of Azure field shapes, no correlations and cost
far more than the 20 us per record the streaming engine is allowed for the whole rule set.

Each compiled rule also exposes a *gate*: a field and the set of lower-cased values one of
which the record must hold for the rule to possibly match, so the engine can index rules
by value (``operationName`` for most Azure rules) instead of trying every rule.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sigma.conditions import ConditionAND
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SigmaType,
    SpecialChars,
)

from auditseal.alerts.comparisons import Compiled, ValueTest, compile_compare, in_network
from auditseal.alerts.fields import EventView, FieldRef, as_text, compile_field
from auditseal.alerts.keywords import KEYWORDS
from auditseal.errors import FormatError

__all__ = ["BROAD_FIELDS", "Gate", "Hit", "ItemMatcher", "and_gate", "compile_detection", "or_gate"]

Check = Callable[[EventView], bool]


@dataclass(frozen=True)
class Gate:
    """A necessary condition: the field must hold one of these lower-cased values, or a
    value starting or ending with one of the affixes."""

    field: FieldRef
    values: frozenset[str]
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def score(self) -> tuple[int, int, int]:
        """Lower is more selective: operation names beat categories and result codes."""
        broad = self.field.key in BROAD_FIELDS
        return (int(broad), int(bool(self.prefixes or self.suffixes)),
                len(self.values) + len(self.prefixes) + len(self.suffixes))


BROAD_FIELDS = frozenset({"category", "categoryvalue", "activitystatusvalue", "status", "level",
                           "resultsignature", "resourceprovidervalue", "loggedbyservice"})
"""Fields with few distinct values: a gate on them lets most records through (and keys
:class:`~auditseal.alerts.selection.Selector` well)."""


@dataclass(frozen=True)
class Hit:
    """Why an item matched: for ``alerts test`` and alert details."""

    detection: str
    field: str | None
    modifiers: tuple[str, ...]
    expected: str
    found: str


@dataclass
class ItemMatcher:
    """One detection item: a field, its modifiers and values, compiled.

    Case-insensitive string values are bucketed so that one record value costs one set
    lookup and at most one ``startswith``/``endswith`` call with a tuple, whatever the
    number of values (why: SigmaHQ rules list up to dozens of operation names).
    """

    field: FieldRef | None
    modifiers: tuple[str, ...]
    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    tests: list[tuple[str, ValueTest]] = dataclasses.field(default_factory=list)
    all_linked: bool = False
    negated: bool = False
    null: bool = False
    labels: list[tuple[str, ValueTest]] = dataclasses.field(default_factory=list)

    def __call__(self, view: EventView) -> bool:
        """Evaluate this item on one record."""
        return self.matches(view) != self.negated

    def matches(self, view: EventView) -> bool:
        """The item before ``neq`` negation."""
        if self.field is None:
            text = view.text()
            if self.all_linked:
                return all(test(text, text, view) for _, test in self.labels)
            return (any(c in text for c in self.contains)
                    or any(test(text, text, view) for _, test in self.tests))
        lowered = view.lowered(self.field)
        if self.null and (not lowered or None in lowered):
            return True
        if self.all_linked:
            return all(self._any_value(test, view, lowered) for _, test in self.labels)
        exact, prefixes, suffixes = self.exact, self.prefixes, self.suffixes
        for found in lowered:
            if found is None:
                continue
            if found in exact or (prefixes and found.startswith(prefixes)) or (
                    suffixes and found.endswith(suffixes)):
                return True
            for c in self.contains:
                if c in found:
                    return True
        return bool(self.tests) and any(self._any_value(t, view, lowered) for _, t in self.tests)

    def _any_value(self, test: ValueTest, view: EventView,
                   lowered: tuple[str | None, ...]) -> bool:
        assert self.field is not None
        raw = view.values(self.field)
        return any(test(value, text, view) for value, text in zip(raw, lowered, strict=True))

    def explain(self, view: EventView, detection: str) -> list[Hit]:
        """The values of this item that matched, for people."""
        if self.field is None:
            text = view.text()
            if (type(view) is EventView and not self.tests and not self.null
                    and len(self.labels) == len(self.contains)):
                # Plain keywords (each label is its contains string): the shared scan
                # already found them, see :mod:`auditseal.alerts.keywords`.
                found = view.keywords()
                return [Hit(detection, None, self.modifiers, label, "record text")
                        for (label, _), needle in zip(self.labels, self.contains, strict=True)
                        if needle in found or (not KEYWORDS.settles(needle) and needle in text)]
            return [Hit(detection, None, self.modifiers, label, "record text")
                    for label, test in self.labels if test(text, text, view)]
        raw, lowered = view.values(self.field), view.lowered(self.field)
        if self.negated or (self.null and (not lowered or None in lowered)):
            shown = "absent" if not raw else ", ".join(as_text(v) for v in raw)
            expected = "not " if self.negated else ""
            return [Hit(detection, self.field.name, self.modifiers,
                        expected + " or ".join(label for label, _ in self.labels), shown)]
        return [Hit(detection, self.field.name, self.modifiers, label, as_text(value))
                for label, test in self.labels
                for value, text in zip(raw, lowered, strict=True) if test(value, text, view)]

    def gate(self) -> Gate | None:
        """A necessary condition of this item, when it is a plain value list."""
        if (self.field is None or self.negated or self.null or self.tests or self.contains
                or not (self.exact or self.prefixes or self.suffixes)):
            return None
        return Gate(self.field, self.exact, self.prefixes, self.suffixes)


# --- values ------------------------------------------------------------------------------------


def compile_item(item: SigmaDetectionItem) -> ItemMatcher:
    """Compile one detection item (values already rewritten by pySigma's modifiers)."""
    modifiers = tuple(m.__name__.removeprefix("Sigma").removesuffix("Modifier").lower()
                      for m in item.modifiers)
    ref = None if item.field is None else compile_field(item.field)
    matcher = ItemMatcher(ref, modifiers, all_linked=item.value_linking is ConditionAND,
                          negated=item.negated)
    buckets: dict[str, list[str]] = {"exact": [], "prefix": [], "suffix": [], "contains": []}
    for value in _flatten(item.value):
        if isinstance(value, SigmaNull):
            matcher.null = True
            matcher.labels.append(("null", _never))
            continue
        label, kind, text, test = _compile_value(value, keyword=ref is None)
        matcher.labels.append((label, test))
        if kind in buckets and text is not None and (ref is not None or kind == "contains"):
            buckets[kind].append(text)
        else:
            matcher.tests.append((label, test))
    matcher.exact = frozenset(buckets["exact"])
    matcher.prefixes = tuple(buckets["prefix"])
    matcher.suffixes = tuple(buckets["suffix"])
    matcher.contains = tuple(buckets["contains"])
    return matcher


def _flatten(values: Iterable[SigmaType]) -> Iterable[SigmaType]:
    for value in values:
        if isinstance(value, SigmaExpansion):
            yield from _flatten(value.values)
        else:
            yield value


def _never(_value: object, _text: str | None, _view: EventView) -> bool:
    return False




def _compile_value(value: SigmaType, *, keyword: bool) -> Compiled:
    """Compile one Sigma value."""
    if isinstance(value, SigmaString):
        return _compile_string(value, keyword=keyword)
    if isinstance(value, SigmaNumber | SigmaBool):
        text = as_text(value.number if isinstance(value, SigmaNumber) else value.boolean)
        return text, "exact", text, lambda _v, t, _view: t == text
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
        pattern = re.compile(str(value.regexp), flags)
        return (f"re /{pattern.pattern}/", "other",
                None, lambda v, _t, _view: v is not None and pattern.search(as_text(v)) is not None)
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        return f"cidr {value.cidr}", "other", None, lambda _v, t, _view: in_network(t, network)
    if isinstance(value, SigmaCompareExpression):
        return compile_compare(value)
    if isinstance(value, SigmaExists):
        wanted = value.exists
        return f"exists {wanted}", "other", None, lambda _v, _t, _view: wanted
    if isinstance(value, SigmaFieldReference):
        other = compile_field(value.field)
        return (f"fieldref {value.field}", "other", None,
                lambda _v, t, view: t is not None and t in view.lowered(other))
    raise FormatError(f"unsupported Sigma value type {type(value).__name__}")


def _compile_string(value: SigmaString, *, keyword: bool) -> Compiled:
    parts = list(value.s)
    if any(isinstance(p, Placeholder) for p in parts):
        raise FormatError(f"placeholder in {value!s} needs a value (expand modifier)")
    cased = isinstance(value, SigmaCasedString)
    label = ("cased " if cased else "") + str(value)
    if keyword and (not parts or parts[0] is not SpecialChars.WILDCARD_MULTI):
        parts.insert(0, SpecialChars.WILDCARD_MULTI)  # keywords are searched in the text
    if keyword and parts[-1] is not SpecialChars.WILDCARD_MULTI:
        parts.append(SpecialChars.WILDCARD_MULTI)
    plain = [p for p in parts if isinstance(p, str)]
    specials = [p for p in parts if not isinstance(p, str)]
    fold: Callable[[str], str] = (lambda s: s) if cased else str.lower
    body = fold("".join(plain))
    star = SpecialChars.WILDCARD_MULTI
    wild = all(s is star for s in specials)
    pick = (lambda v, _t: as_text(v)) if cased else (lambda _v, t: t)
    kind = "other" if cased else "exact"
    if not specials and not cased:
        return label, kind, body, lambda _v, t, _view: t == body
    if not specials:
        return label, kind, None, lambda v, _t, _view: v is not None and as_text(v) == body
    if wild and len(plain) == 1 and len(parts) == 3 and parts[1] == plain[0]:
        return (label, "other" if cased else "contains", body,
                lambda v, t, _view: t is not None and body in pick(v, t))
    if wild and len(parts) == 2 and parts[0] is star:
        return (label, "other" if cased else "suffix", body,
                lambda v, t, _view: t is not None and pick(v, t).endswith(body))
    if wild and len(parts) == 2 and parts[1] is star:
        return (label, "other" if cased else "prefix", body,
                lambda v, t, _view: t is not None and pick(v, t).startswith(body))
    regex = "".join(
        re.escape(p) if isinstance(p, str) else (".*" if p is star else ".") for p in parts
    )
    pattern = re.compile(regex, re.DOTALL | (0 if cased else re.IGNORECASE))
    return label, "other", None, lambda v, t, _view: t is not None and (
        pattern.fullmatch(as_text(v) if not keyword else t) is not None)


# --- detections and conditions -----------------------------------------------------------------


@dataclass
class DetectionMatcher:
    """A named detection: items (or nested detections) linked with AND or OR."""

    name: str
    parts: list[ItemMatcher | DetectionMatcher]
    conjunction: bool

    def __call__(self, view: EventView) -> bool:
        """Evaluate the detection on one record."""
        if self.conjunction:  # loops, not all()/any() over generators: this runs per record
            for part in self.parts:  # noqa: SIM110
                if not part(view):
                    return False
            return True
        for part in self.parts:  # noqa: SIM110
            if part(view):
                return True
        return False

    def items(self) -> Iterable[ItemMatcher]:
        """Every item below this detection."""
        for part in self.parts:
            if isinstance(part, ItemMatcher):
                yield part
            else:
                yield from part.items()

    def explain(self, view: EventView) -> list[Hit]:
        """The items that matched, when the detection as a whole matched."""
        if not self(view):
            return []
        return [hit for item in self.items() if item(view) for hit in item.explain(view, self.name)]

    def gate(self) -> Gate | None:
        """A necessary condition of this detection, when one can be derived."""
        gates = [part.gate() for part in self.parts]
        return and_gate(gates) if self.conjunction else or_gate(gates)


def compile_detection(name: str, detection: SigmaDetection) -> DetectionMatcher:
    """Compile one named detection of a rule."""
    parts: list[ItemMatcher | DetectionMatcher] = [
        compile_item(part) if isinstance(part, SigmaDetectionItem)
        else compile_detection(name, part)
        for part in detection.detection_items
    ]
    return DetectionMatcher(name, parts, detection.item_linking is ConditionAND)


def and_gate(gates: list[Gate | None]) -> Gate | None:
    """The most selective gate of AND-linked parts (any one of them is necessary)."""
    known = [g for g in gates if g is not None]
    return min(known, key=Gate.score) if known else None


def or_gate(gates: list[Gate | None]) -> Gate | None:
    """The union of OR-linked parts' gates, when all gate the same field."""
    if not gates or any(g is None for g in gates):
        return None
    known = [g for g in gates if g is not None]
    if len({g.field.key for g in known}) != 1:
        return None
    return Gate(known[0].field, frozenset().union(*(g.values for g in known)),
                tuple(p for g in known for p in g.prefixes),
                tuple(x for g in known for x in g.suffixes))
