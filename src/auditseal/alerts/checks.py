"""Common detection shapes specialised into lean per-record checks.

Concept: the *fast path* of the Sigma evaluator (issue 4, "evaluating the whole built-in
pack plus the SigmaHQ Azure rules in streaming mode costs <= 20 us per event").
:class:`~auditseal.alerts.matcher.ItemMatcher` handles every modifier in one general
method; most items of the Azure rules are one of three shapes, which this module turns into
closures doing only that shape's work (same result as the general method, one call less):

* a field equal to one of N strings: one C-level ``isdisjoint`` of the value set with the
  field's lower-cased values (null never equals a string);
* a field containing one of N strings: ``in`` over each lower-cased value;
* a keyword list (no field): the keywords the record's lower-cased text holds, found for
  every rule in one scan (:mod:`auditseal.alerts.keywords`).

Detections linking such checks with AND or OR become one closure over a tuple of checks; an
AND tries the cheap checks first (a field read at one path before a merged field such as
``Status`` or a keyword search: the result of an AND of side-effect-free checks does not
depend on their order, only its cost does).
Any other shape keeps the general matcher.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from auditseal.alerts.fields import EventView
from auditseal.alerts.keywords import KEYWORDS
from auditseal.alerts.matcher import DetectionMatcher, ItemMatcher

__all__ = ["detection_check", "item_check"]

Check = Callable[[EventView], bool]


def item_check(item: ItemMatcher) -> Check:
    """The leanest check equivalent to ``item(view)``."""
    if item.all_linked or item.tests or item.null:
        return item
    if item.field is None:
        return _keyword_check(item) if item.contains and not item.negated else item
    ref, negated = item.field, item.negated
    exact, contains = item.exact, item.contains
    if exact and not (item.prefixes or item.suffixes or contains):
        if negated:
            return lambda view: exact.isdisjoint(view.lowered(ref))
        return lambda view: not exact.isdisjoint(view.lowered(ref))
    if contains and not (exact or item.prefixes or item.suffixes):

        def contains_any(view: EventView) -> bool:
            for found in view.lowered(ref):
                if found is not None:
                    for needle in contains:
                        if needle in found:
                            return not negated
            return negated

        return contains_any
    return item


def _keyword_check(item: ItemMatcher) -> Check:
    """Keywords searched in the record's lower-cased JSON text.

    Through the shared scan of every rule's keywords (:mod:`auditseal.alerts.keywords`);
    the item's own scan only when the shared one may have missed one of them.
    """
    contains = item.contains
    if len(contains) == 1:
        needle = contains[0]
        alone: Check = lambda view: needle in view.text()  # noqa: E731
    else:
        search = re.compile("|".join(map(re.escape, contains))).search
        alone = lambda view: search(view.text()) is not None  # noqa: E731
    if "" in contains:
        return alone
    needles = frozenset(contains)
    KEYWORDS.register(contains)

    def shared(view: EventView) -> bool:
        if not needles.isdisjoint(view.keywords()):
            return True
        return not KEYWORDS.hideable.isdisjoint(needles) and alone(view)

    return shared


def detection_check(detection: DetectionMatcher) -> Check:
    """The leanest check equivalent to ``detection(view)``."""
    parts = detection.parts
    if detection.conjunction:  # cheap items first: AND of pure checks, in any order
        parts = sorted(parts, key=_cost)
    checks = tuple(item_check(part) if isinstance(part, ItemMatcher) else detection_check(part)
                   for part in parts)
    if len(checks) == 1:
        return checks[0]
    if detection.conjunction:

        def every(view: EventView) -> bool:  # loops, not all(generator): runs per record
            for check in checks:  # noqa: SIM110
                if not check(view):
                    return False
            return True

        return every

    def some(view: EventView) -> bool:
        for check in checks:  # noqa: SIM110
            if check(view):
                return True
        return False

    return some


def _cost(part: ItemMatcher | DetectionMatcher) -> int:
    """A rough rank of what a part costs per record: a field read at one path first, then
    nested detections, then merged or derived fields (``Status``) and keyword searches."""
    if isinstance(part, DetectionMatcher):
        return 1
    if part.field is None or not part.field.first_of:
        return 2
    return 0 if not part.tests else 1
