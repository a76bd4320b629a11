"""Which rules of a log a record is worth evaluating, memoized per combination of key values.

Concept: the *candidate selection* of the alert engine (issue 4, "<= 20 us per event" for the
built-in pack plus the SigmaHQ Azure rules). :mod:`auditseal.alerts.gates` indexes a log's
rules by the value of each gate field; merging what every gate contributes (a dict lookup,
the affix tests of the rules gated on prefixes or suffixes, then a merge in rule order
without repeats) cost more than evaluating the rules it picked. Yet the candidates are a
function of the gate values alone, and those repeat: a tenant has a few hundred operation
names, a handful of result codes. So a :class:`Selector` reads the log's *key fields* (its
gate fields, and the fields of few values its rules test, such as ``ActivityStatusValue``)
as found in the record and looks the combination up in a dict built on first sight.

The combination also settles the rules that read nothing but key fields (``ResultType: 0``,
``Status: Success`` and ``AuthenticationRequirement: ...``): their verdict is a function of
the key, computed once with the candidates. The other candidates are evaluated per record.

Exactness: a key field's part is the single string its first candidate path reaches (the
common case), ``None`` when no candidate path reaches anything, else (an object, or a list
crossed: their JSON text is mostly unique per record, so keying on it would miss the memo)
the set of rules its lower-cased values add to the candidates through the gate index; once
a field was met so, no rule reading it is settled by the key. A number, boolean or null is
keyed with its type (``True == 1`` in Python, not in Sigma: a combination seen with such nodes is
only reused when their types agree). A merged or derived field (``Status``) is
keyed by what each of its paths reaches, when each reaches at most one scalar. Every part
determines the field's lower-cased values (a string part is lower-cased to the very value
the gate index looks up), so equal keys give equal candidates, and equal verdicts of rules
that test only lower-cased values of key fields (no regex, range or cased test: those read
the values as written).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from auditseal.alerts.absence import absence_screen
from auditseal.alerts.fields import EventView, FieldRef
from auditseal.alerts.gates import Table
from auditseal.alerts.matcher import BROAD_FIELDS, DetectionMatcher, ItemMatcher
from auditseal.alerts.resolver import Ends
from auditseal.alerts.sigma import CompiledRule

__all__ = ["Plan", "Selector", "in_rule_order"]

Plan = tuple[tuple[CompiledRule, bool | None], ...]
"""The candidates in rule order, each with its verdict when the key settles it, else None."""

_SCALARS = frozenset((int, float, bool))
_STRINGS = frozenset((str,))
_READS = object()
"""Starts a key part made of the nodes a field's paths reach (not of its values)."""
_ABSENT = object()
_GATED = object()
"""Starts a key part made of the rules a field's values add to the candidates."""
_LISTED = object()
"""Starts a key part made of the strings a field's path reached through a list."""
_Gates = tuple[tuple[dict[str, list[CompiledRule]],
                     list[tuple[tuple[str, ...], tuple[str, ...], CompiledRule]]], ...]
"""The (rules by value, rules by affix) of each gate on one field."""
_MAX_COMBINATIONS = 4096
"""Combinations kept per log: bounded memory on streams of ever-new key values."""


class Selector:
    """The candidate rules of one log's records (its :class:`~auditseal.alerts.gates.Table`)."""

    __slots__ = ("_cache", "_complex", "_gates", "_order", "_pids", "_refs", "_rules",
                 "_settled", "_simple", "program", "screen", "table")

    def __init__(self, table: Table, order: dict[int, int]) -> None:
        """``order``: a rule's position in the rule set by its ``id()`` (candidates keep it)."""
        self.table = table
        self.program = table.program
        self._order = order
        rules = _rules_of(table)
        refs: dict[str, FieldRef] = {}
        for ref, _, _, _ in table.gates:
            refs.setdefault(ref.key, ref)
        for rule in rules:  # fields of few values the rules test: as cheap to key on
            for item in _items(rule.detections.values()):
                if item.field is not None and item.field.key in BROAD_FIELDS:
                    refs.setdefault(item.field.key, item.field)
        self._simple = tuple((ref.first_of, tuple(sorted(ref.reads)), ref)
                             for ref in refs.values())
        self._complex: tuple[tuple[tuple[int, ...], tuple[int, ...], FieldRef, _Gates], ...] = ()
        self._gates: dict[str, _Gates] = {}
        for ref, _, by_value, affixes in table.gates:
            self._gates[ref.key] = (*self._gates.get(ref.key, ()), (by_value, affixes))
        self._refs, self._rules = refs, rules
        self._pids = tuple(sorted({pid for _, reads, _ in self._simple for pid in reads}))
        self._settled = frozenset(id(rule) for rule in rules if _settled_by(rule, refs))
        self._cache: dict[object, tuple[Plan, tuple[type, ...] | None]] = {}
        self.screen = absence_screen(table)
        """False on a record's bytes when it has no candidate (:mod:`.absence`), or None."""

    def select(self, view: EventView) -> Plan:
        """The candidates of a record whose view walked :attr:`program` already."""
        reached = view.reached
        # Most key fields reach one scalar per path: their nodes, read in C, are the key.
        nodes = tuple(map(reached.get, self._pids))
        try:
            key = (nodes, tuple([_part(view, reached, slot) for slot in self._complex])
                   if self._complex else None)
            found = self._cache.get(key)
        except TypeError:  # an object, or a list crossed: key that field by what it adds
            if not self._demote(reached):
                return self._plan(view)
            return self.select(view)
        if found is not None:
            plan, types = found
            # Nodes equal to strings are strings; numbers and booleans must also agree in
            # type (True == 1 == 1.0 in Python, not in Sigma).
            if types is None or types == _types(nodes):
                return plan
            return self._plan(view)  # rare: not memoized
        if len(self._cache) >= _MAX_COMBINATIONS:
            self._cache.clear()
        plan, types = self._plan(view), _types(nodes)
        self._cache[key] = (plan, None if _STRINGS.issuperset(types) else types)
        return plan

    def _plan(self, view: EventView) -> Plan:
        settled = self._settled
        return tuple((rule, rule.check(view) if id(rule) in settled else None)
                     for rule in self.compute(view))

    def _demote(self, reached: Ends) -> bool:
        """Key by the rules they add the fields whose nodes cannot be hashed; False if none."""
        unhashable = set()
        for pid in self._pids:
            try:
                hash(reached.get(pid))
            except TypeError:
                unhashable.add(pid)
        demoted = [slot for slot in self._simple if unhashable.intersection(slot[1])]
        if not demoted:
            return False
        self._simple = tuple(slot for slot in self._simple if slot not in demoted)
        self._complex = (*self._complex, *((*slot, self._gates.get(slot[2].key, ()))
                                           for slot in demoted))
        # Keyed by what it adds to the candidates, such a field settles no rule any more.
        kept = {key: ref for key, ref in self._refs.items()
                if all(ref is not slot[2] for slot in self._complex)}
        self._settled = frozenset(id(rule) for rule in self._rules if _settled_by(rule, kept))
        self._pids = tuple(sorted({pid for _, reads, _ in self._simple for pid in reads}))
        self._cache.clear()  # the key's layout changed
        return True

    def compute(self, view: EventView) -> tuple[CompiledRule, ...] | list[CompiledRule]:
        """The candidates without the memo: every gate looked up, merged in rule order.

        Allocates only when several gates (or values) contribute: one contribution is
        already in rule order and free of repeats.
        """
        table = self.table
        found: list[CompiledRule] | tuple[CompiledRule, ...] = table.always
        many = False
        for ref, _, by_value, affixes in table.gates:
            for each in view.lowered(ref):
                if each is None:
                    continue
                rules = by_value.get(each)
                if rules is not None:
                    if found:
                        found = [*found, *rules]
                        many = True
                    else:
                        found = tuple(rules)
                for prefixes, suffixes, rule in affixes:
                    if each.startswith(prefixes) or each.endswith(suffixes):
                        found = [*found, rule]
                        many = True
        if many and len(found) > 1:  # a rule may be reached twice (list values): rule order
            found = in_rule_order(found, self._order)
        return found


def in_rule_order(found: Iterable[CompiledRule], order: dict[int, int]) -> list[CompiledRule]:
    """``found`` once each, in rule-set order (``order``: position by the rule's ``id()``)."""
    unique = {order[id(rule)]: rule for rule in found}
    return [unique[position] for position in sorted(unique)]


def _rules_of(table: Table) -> list[CompiledRule]:
    """Every rule a table may pick, once each."""
    found: dict[int, CompiledRule] = {id(rule): rule for rule in table.always}
    for _, _, by_value, affixes in table.gates:
        found.update((id(rule), rule) for rules in by_value.values() for rule in rules)
        found.update((id(rule), rule) for _, _, rule in affixes)
    return list(found.values())


def _items(parts: Iterable[ItemMatcher | DetectionMatcher]) -> Iterable[ItemMatcher]:
    for part in parts:
        if isinstance(part, DetectionMatcher):
            yield from _items(part.parts)
        else:
            yield part


def _settled_by(rule: CompiledRule, refs: dict[str, FieldRef]) -> bool:
    """Whether the rule tests nothing but the lower-cased values of these fields."""
    items = list(_items(rule.detections.values()))
    return bool(items) and all(
        item.field is not None and not item.tests and not item.all_linked
        and item.field.key in refs and item.field.steps == refs[item.field.key].steps
        for item in items)


def _types(nodes: tuple[object, ...]) -> tuple[type, ...]:
    """The type of every node (each part is None or a tuple of nodes: lists do not hash)."""
    return tuple(map(type, chain.from_iterable(filter(None, nodes))))  # type: ignore[arg-type]


def _part(view: EventView, reached: Ends,
          slot: tuple[tuple[int, ...], tuple[int, ...], FieldRef, _Gates]) -> object:
    """The key part of a field whose nodes may not be hashable (see the module docstring)."""
    first_of, reads, ref, gates = slot
    if first_of:
        for pid in first_of:
            nodes = reached.get(pid)
            if nodes is not None:
                break
        else:
            return None  # absent: the gate contributes nothing
        if len(nodes) == 1:
            node = nodes[0]
            if type(node) is str:
                return node
            if node is None or type(node) in _SCALARS:
                return (type(node), node)
        elif _STRINGS.issuperset(map(type, nodes)):
            # Strings reached through a list (targetResources[].type): they determine its
            # lower-cased values, and repeat across records (their JSON text would not).
            return (_LISTED, *nodes)
    else:
        # A merged or derived field (Status): its values are a function of the nodes its
        # paths reach, cheaper to read than to compute.
        parts: list[object] = [_READS]
        for pid in reads:
            nodes = reached.get(pid)
            if nodes is None:
                parts.append(_ABSENT)
                continue
            if len(nodes) == 1:
                node = nodes[0]
                if type(node) is str:
                    parts.append(node)
                    continue
                if node is None or type(node) in _SCALARS:
                    parts.append((type(node), node))
                    continue
            break
        else:
            return tuple(parts)
    # An object or list: its values (JSON text, mostly unique per record) matter only
    # through the candidates they add, so that is the part (no settled rule reads it).
    found: set[int] = set()
    for value in view.lowered(ref):
        if value is None:
            continue
        for by_value, affixes in gates:
            rules = by_value.get(value)
            if rules is not None:
                found.update(map(id, rules))
            for prefixes, suffixes, rule in affixes:
                if value.startswith(prefixes) or value.endswith(suffixes):
                    found.add(id(rule))
    return (_GATED, frozenset(found))
