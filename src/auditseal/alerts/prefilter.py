"""The byte prefilter's needles: literals one of which a record must show for a rule to match.

Concept: a *necessary condition* of each rule on the sealed JSON text, checked before the
record is decoded (issue 4, "<= 20 us per event" for the whole pack; most audit records
match no rule, so the cheapest record is the one never decoded). A rule's :class:`Needles`
are lower-cased literals one of which the record's lower-cased text must show for the rule
to possibly match; they come from the same values as its gate (``operationName`` lists,
``contains`` strings, keywords). :class:`~auditseal.alerts.screen.Screen` looks for every
rule's needles in one pass and says why that is sound; the engine then evaluates only the
rules hit, in full, with the general evaluator: the screen only ever removes rules that
cannot match.

What a needle may hold, so that :mod:`~auditseal.alerts.screen` can find it:

* no ``"``, ``\\``, control character or other structural JSON character: a needle then lies
  within one string (or ``true``/``false``/``null`` token) of the record, also inside a
  compact JSON dump of an object, whose strings are the record's own;
* *exact*, *prefix* and *suffix* needles must not fit in a ``true``/``false`` token and must
  hold a character no number is spelled with, so the value they describe can only be a
  string; otherwise they are checked as *contains* needles;
* integers are *number* needles (a string equal to one, or a number token spelling it);
* non-ASCII literals are dropped (``Needles.ascii_only`` says so: the needles are then a
  necessary condition on ASCII records only);
* fields computed by the engine (``@result``, ``@provider``) give no needles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionIdentifier,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
)
from sigma.rule import SigmaRule

from auditseal.alerts.matcher import DetectionMatcher, ItemMatcher

__all__ = ["Needles", "rule_needles"]

_STRUCTURAL = frozenset('{}[]:,"\\')
_NUMBERISH = frozenset("0123456789.+-einfaty")
"""Characters of numbers as Python spells them (1e+16, inf, nan) and of true/false."""


@dataclass(frozen=True)
class Needles:
    """Any one of these must show in the record's lower-cased bytes (a necessary condition).

    Attributes:
        exact: a whole string value equal to one of these.
        prefixes: a string value starting with one of these.
        suffixes: a string value ending with one of these.
        contains: anywhere in the bytes.
    """

    exact: frozenset[bytes] = frozenset()
    prefixes: tuple[bytes, ...] = ()
    suffixes: tuple[bytes, ...] = ()
    contains: tuple[bytes, ...] = ()
    numbers: tuple[bytes, ...] = ()
    """Integers: a string value equal to one, or a number token spelling it."""
    ascii_only: bool = False
    """A non-ASCII literal was dropped: the needles are a necessary condition on ASCII
    records only (a record with other characters must be evaluated the general way)."""

    def __or__(self, other: Needles) -> Needles:
        """Either condition: the needles of both."""
        return Needles(self.exact | other.exact, self.prefixes + other.prefixes,
                       self.suffixes + other.suffixes, self.contains + other.contains,
                       self.numbers + other.numbers, self.ascii_only or other.ascii_only)

    def score(self) -> tuple[int, int, int]:
        """Lower is more selective: fewer needles, exact ones, then long ones."""
        groups = (self.exact, self.prefixes, self.suffixes, self.contains, self.numbers)
        count = sum(len(group) for group in groups)
        shortest = min((len(n) for group in groups for n in group), default=0)
        return (int(bool(self.contains or self.numbers)), count, -shortest)


_INTEGER = re.compile(r"-?[0-9]+")
_IMPOSSIBLE = b""
"""Marks a literal no value of an ASCII record can hold (non-ASCII): dropped."""


def _plain(text: str) -> bytes | None:
    """The needle bytes of a lower-cased literal, or None when it cannot be one."""
    if not text.isascii():
        return _IMPOSSIBLE  # values of an ASCII record are ASCII: see Needles.ascii_only
    if not text or any(c in _STRUCTURAL or c < " " for c in text):
        return None
    if all(c in _NUMBERISH for c in text):
        return None
    return text.encode()


def _value_needles(exact: Iterable[str], prefixes: Iterable[str], suffixes: Iterable[str],
                   contains: Iterable[str]) -> Needles | None:
    """Needles of OR-linked values; None when one of them gives none."""
    out: dict[str, list[bytes]] = {"exact": [], "prefix": [], "suffix": [], "contains": [],
                                   "number": []}
    dropped = False
    for kind, texts in (("exact", exact), ("prefix", prefixes), ("suffix", suffixes),
                        ("contains", contains)):
        for text in texts:
            needle = _plain(text)
            if needle is None and kind == "exact" and _INTEGER.fullmatch(text):
                out["number"].append(text.encode())  # a string piece or an integer token
                continue
            if needle is None:
                return None
            if needle is _IMPOSSIBLE:
                dropped = True
                continue
            # A piece of "true"/"false" may stand unquoted in the bytes: only a substring
            # test is sound for it (decided per needle, not for the rest of the group).
            loose = kind != "contains" and (needle in b"true" or needle in b"false")
            out["contains" if loose else kind].append(needle)
    return Needles(frozenset(out["exact"]), tuple(out["prefix"]), tuple(out["suffix"]),
                   tuple(out["contains"]), tuple(out["number"]), dropped)


def item_needles(item: ItemMatcher) -> Needles | None:
    """A necessary condition of one detection item, when its values give one."""
    if item.negated or item.null:
        return None
    if item.field is not None and any(p[0].startswith("@") for p in item.field.candidates):
        return None  # derived values ("Success") are not spelled in the record
    if item.all_linked:  # every value must match: the most selective one is necessary
        options = [n for n in (_value_needles(*group) for group in (
            *(([e], (), (), ()) for e in item.exact), *(((), [p], (), ()) for p in item.prefixes),
            *(((), (), [s], ()) for s in item.suffixes),
            *(((), (), (), [c]) for c in item.contains))) if n is not None]
        return min(options, key=Needles.score) if options else None
    if item.tests or not (item.exact or item.prefixes or item.suffixes or item.contains):
        return None  # a regex, a range, a cased value...: no literal to look for
    return _value_needles(item.exact, item.prefixes, item.suffixes, item.contains)


def detection_needles(detection: DetectionMatcher) -> Needles | None:
    """A necessary condition of a named detection."""
    parts = [item_needles(part) if isinstance(part, ItemMatcher) else detection_needles(part)
             for part in detection.parts]
    return and_needles(parts) if detection.conjunction else or_needles(parts)


def and_needles(parts: Sequence[Needles | None]) -> Needles | None:
    """AND: any part's condition is necessary; the most selective is kept."""
    known = [p for p in parts if p is not None]
    return min(known, key=Needles.score) if known else None


def or_needles(parts: Sequence[Needles | None]) -> Needles | None:
    """OR: necessary only when every part has one; then the union."""
    if not parts or any(p is None for p in parts):
        return None
    out = Needles()
    for part in parts:
        assert part is not None
        out = out | part
    return out


def rule_needles(rule: SigmaRule, detections: dict[str, DetectionMatcher]) -> Needles | None:
    """A necessary condition of a whole rule (its conditions are OR-linked)."""
    return or_needles([_node(condition.parse(postprocess=False), rule, detections)
                       for condition in rule.detection.parsed_condition])


def _node(node: Any, rule: SigmaRule, detections: dict[str, DetectionMatcher]
          ) -> Needles | None:
    """Mirrors :func:`auditseal.alerts.sigma.compile_condition` (which has checked it)."""
    if isinstance(node, ConditionIdentifier):
        return detection_needles(detections[node.identifier])
    if isinstance(node, ConditionSelector):
        parts = [detection_needles(detections[ident.identifier])
                 for ident in node.resolve_referenced_detections(rule.detection)]
        return and_needles(parts) if node.cond_class is ConditionAND else or_needles(parts)
    if isinstance(node, ConditionAND | ConditionOR):
        parts = [_node(arg, rule, detections) for arg in node.args]
        return and_needles(parts) if isinstance(node, ConditionAND) else or_needles(parts)
    if isinstance(node, ConditionNOT):
        return None
    return None
