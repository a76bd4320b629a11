"""The byte prefilter: which rules could match a record, read from its raw bytes.

Concept: a *necessary condition* of each rule on the sealed JSON text, checked before the
record is decoded (issue 4, "<= 20 us per event" for the whole pack; most audit records
match no rule, so the cheapest record is the one never decoded). A rule's :class:`Needles`
are lower-cased literals one of which the record's lower-cased bytes must show for the rule
to possibly match; they come from the same values as its gate (``operationName`` lists,
``contains`` strings, keywords). The :class:`Screen` of a rule set tells, per record, the
rules whose needles it shows; the engine evaluates only those, in full, with the general
evaluator: the screen only ever removes rules that cannot match.

Why this is sound (every needle is checked in the way that keeps it so):

* a record is screened only when its bytes are ASCII and hold no ``\\u`` or ``\\/``
  escape: then every string of the record (and of JSON held in its strings) is spelled in
  the bytes exactly as decoded, except ``"`` and ``\\``, which needles never hold, and
  ``bytes.lower`` equals ``str.lower`` (non-ASCII letters such as the Kelvin sign lower-case
  to ASCII ones, so non-ASCII records go the general way);
* *exact*, *prefix* and *suffix* needles are matched against the bytes between two
  ``"``/``\\`` delimiters, which is where a whole string value lies; they must not fit in a
  ``true``/``false`` token and must hold a character no number is spelled with, so the value
  they describe can only be a string (or a compact JSON dump of an object, whose strings
  are the record's own); otherwise they are checked as *contains* needles;
* *contains* needles hold none of ``{}[]:,"\\`` nor only number characters, so inside a
  compact JSON dump they lie within one string, ``true``/``false``/``null`` token;
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

__all__ = ["Needles", "Screen", "rule_needles", "screenable"]

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

    def __or__(self, other: Needles) -> Needles:
        """Either condition: the needles of both."""
        return Needles(self.exact | other.exact, self.prefixes + other.prefixes,
                       self.suffixes + other.suffixes, self.contains + other.contains,
                       self.numbers + other.numbers)

    def score(self) -> tuple[int, int, int]:
        """Lower is more selective: fewer needles, exact ones, then long ones."""
        groups = (self.exact, self.prefixes, self.suffixes, self.contains, self.numbers)
        count = sum(len(group) for group in groups)
        shortest = min((len(n) for group in groups for n in group), default=0)
        return (int(bool(self.contains or self.numbers)), count, -shortest)


_INTEGER = re.compile(r"-?[0-9]+")
_FRACTION = re.compile(rb'[:\[,](?:\s|"+[nrt])*-?[0-9]+[.e]')
"""A number token with a fraction or exponent (also in JSON held in a string), lower-cased."""
_IMPOSSIBLE = b""
"""Marks a literal no value of a screenable record can hold (non-ASCII): dropped."""


def _plain(text: str) -> bytes | None:
    """The needle bytes of a lower-cased literal, or None when it cannot be one."""
    if not text.isascii():
        return _IMPOSSIBLE  # values of an ASCII record (see screenable) are ASCII
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
                continue
            # A piece of "true"/"false" may stand unquoted in the bytes: only a substring
            # test is sound for it (decided per needle, not for the rest of the group).
            loose = kind != "contains" and (needle in b"true" or needle in b"false")
            out["contains" if loose else kind].append(needle)
    return Needles(frozenset(out["exact"]), tuple(out["prefix"]), tuple(out["suffix"]),
                   tuple(out["contains"]), tuple(out["number"]))


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


def screenable(raw: bytes) -> bool:
    """Whether the needles are sound on these bytes (see the module docstring)."""
    return raw.isascii() and b"\\u" not in raw and b"\\/" not in raw


class Screen:
    """The rules of a set whose exact needles a record shows, by position in the set.

    The bytes are lower-cased and their ``\\`` turned into ``"``, so that every string
    value lies between two ``"``: an exact needle is then one of the pieces between
    quotes, and one set intersection checks all of them (about 200 in the SigmaHQ Azure
    rules). Rules with other needles (prefixes, substrings) or none are left to the
    engine's gate index (:attr:`unscreened`): measured, checking 40 substrings one by one
    on the raw bytes costs more than decoding the record and looking up its gate fields.
    """

    __slots__ = ("_exact", "_fraction_rules", "_numbers", "unscreened")

    def __init__(self, needles: Sequence[Needles | None]) -> None:
        """Index the needles of rules ``0..n-1``; None means "no condition known"."""
        self.unscreened: frozenset[int] = frozenset(
            i for i, n in enumerate(needles)
            if n is None or n.prefixes or n.suffixes or n.contains)
        """Rules the screen says nothing about (evaluate them the general way)."""
        self._exact: dict[bytes, list[int]] = {}
        numbers: dict[bytes, set[int]] = {}
        for position, found in enumerate(needles):
            if found is None or position in self.unscreened:
                continue
            for value in found.exact:
                self._exact.setdefault(value, []).append(position)
            for number in found.numbers:
                numbers.setdefault(number, set()).add(position)
        self._numbers = tuple(numbers.items())
        self._fraction_rules = frozenset(p for group in numbers.values() for p in group)

    def hits(self, raw: bytes) -> set[int]:
        """Screened rules (positions) whose needles the screenable bytes show."""
        quoted = raw.lower().replace(b"\\", b'"')
        found: set[int] = set()
        exact = self._exact
        for piece in exact.keys() & quoted.split(b'"'):
            found.update(exact[piece])
        for number, positions in self._numbers:
            if number in quoted:  # a string piece or an integer token spelling it
                found |= positions
        if self._fraction_rules and _FRACTION.search(quoted) is not None:
            found |= self._fraction_rules  # 5.0126e4 is 50126 too: a number needle cannot tell
        return found
