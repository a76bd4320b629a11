"""An alert's explanation (which detections, fields and values matched), memoized.

Concept: the *explanation* of an alert (issue 4: alerts say why they fired; "<= 20 us per
event"). :meth:`CompiledRule.hits <auditseal.alerts.sigma.CompiledRule.hits>` re-evaluates
each detection with the general matcher and tests every value the rule lists against every
value found: about 10 us per alert, more than the rest of the record's evaluation. Yet a
rule's explanation is a function of what it reads, and that repeats: the same operation
name, the same keywords. So :class:`Explainer` keys each rule's explanation by the values
of the fields its detections read (and by the rule's keywords the record's text holds) and
computes it once per key.

Exactness: a rule is explained from the memo only when its explanation can depend on
nothing but that key:

* every field item compares the values as found (no ``fieldref``, which reads another
  field), and every value found is a string or null (``True == 1`` in Python: numbers and
  booleans would share a key while their text differs);
* every keyword item is a plain keyword list whose keywords the shared scan settles
  (:meth:`Keywords.settles <auditseal.alerts.keywords.Keywords.settles>`: found by the scan
  if and only if the text holds them), so the keywords found decide it.

Any other rule, or record, is explained the general way.
"""

from __future__ import annotations

from auditseal.alerts.fields import EventView, FieldRef
from auditseal.alerts.keywords import KEYWORDS
from auditseal.alerts.matcher import DetectionMatcher, Hit, ItemMatcher
from auditseal.alerts.sigma import CompiledRule

__all__ = ["Explainer"]

_MAX_KEYS = 1024
"""Explanations kept per rule: bounded memory on streams of ever-new values."""
_TEXTS = frozenset((str, type(None)))


class _Shape:
    """What a rule's explanation reads: its fields, its keywords (empty: not memoizable)."""

    __slots__ = ("keywords", "memo", "refs", "version")

    def __init__(self, refs: tuple[FieldRef, ...], keywords: frozenset[str], version: int
                 ) -> None:
        self.refs = refs
        self.keywords = keywords
        self.version = version
        self.memo: dict[object, tuple[Hit, ...]] = {}


class Explainer:
    """Explanations of rules' matches, memoized per rule and key (see the module docstring)."""

    def __init__(self) -> None:
        """No rule seen yet."""
        self._shapes: dict[int, _Shape | None] = {}

    def hits(self, rule: CompiledRule, view: EventView) -> tuple[Hit, ...]:
        """``tuple(rule.hits(view))``, from the memo when the rule and record allow."""
        shape = self._shapes.get(id(rule), _UNSEEN)
        if shape is _UNSEEN or (shape is not None and shape.version != KEYWORDS.version):
            shape = self._shapes[id(rule)] = _shape_of(rule)
        if shape is None:
            return tuple(rule.hits(view))
        values = tuple([view.values(ref) for ref in shape.refs])
        for found in values:
            for value in found:
                if type(value) not in _TEXTS:
                    return tuple(rule.hits(view))
        key = (values, shape.keywords.intersection(view.keywords())) if shape.keywords \
            else values
        memo = shape.memo
        hits = memo.get(key)
        if hits is None:
            if len(memo) >= _MAX_KEYS:
                memo.clear()
            hits = memo[key] = tuple(rule.hits(view))
        return hits


_UNSEEN = _Shape((), frozenset(), -1)


def _items(parts: list[ItemMatcher | DetectionMatcher]) -> list[ItemMatcher]:
    found: list[ItemMatcher] = []
    for part in parts:
        found.extend(_items(part.parts) if isinstance(part, DetectionMatcher) else (part,))
    return found


def _shape_of(rule: CompiledRule) -> _Shape | None:
    """What the rule's explanation reads, or None when it reads more than field values and
    settled keywords (see the module docstring)."""
    refs: dict[str, FieldRef] = {}
    keywords: set[str] = set()
    version = KEYWORDS.version
    for detection in rule.detections.values():
        for item in _items(detection.parts):
            if item.field is not None:
                if any(label.startswith("fieldref ") for label, _ in item.labels):
                    return None  # reads another field: not keyed by this one alone
                refs.setdefault(item.field.key, item.field)
                continue
            if (item.tests or item.null or item.all_linked
                    or len(item.labels) != len(item.contains)
                    or not all(map(KEYWORDS.settles, item.contains))):
                return None
            keywords.update(item.contains)
    return _Shape(tuple(refs.values()), frozenset(keywords), version)
