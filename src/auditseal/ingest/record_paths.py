"""Candidate paths into a decoded record, matched case-insensitively, pruned per key set.

Concept: the *path* of the field maps (:data:`auditseal.ingest.azure_categories.Path`): a
tuple of keys, matched case-insensitively (the exact key first, else the first key in the
dict's order that case-folds to it), and list indexes; a string met on the way may hold
JSON (AKS ``properties.log``). A field has several candidate paths, best first, and most of
them miss: an Activity Log record has none of the caller paths of the Entra token shapes.
Looking each one up, folding the record's keys again for every miss, was most of the cost
of indexing an event.

Records of one kind share their key sets, so what depends only on the keys is worked out
once per *key set* (a dict's keys in order, interned): which key, if any, folds to a wanted
one (:func:`folded_key`), and which of a field's candidates (:class:`Candidates`) can find
anything in the record at all. The values are still read from each record, in candidate
order, so the answers are those of looking up every candidate in turn
(tests/unit/test_normalize_paths.py compares the two on the corpus and generated records).
Every table here is bounded; a record with ever-new keys only costs a refill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from auditseal.ingest import azure_categories as cat
from auditseal.ingest.jsliteral import MISSING

__all__ = [
    "Candidates", "KeySet", "candidates", "folded_key", "get_key", "key_set", "label", "walk",
]

_MEMO_MAX = 4096
"""Key sets (or candidate tuples) remembered per table; past it the table is emptied: records
with ever-new keys (a dict keyed by ids) only cost a refill, memory stays bounded."""

_KEY_SETS: dict[tuple[object, ...], dict[str, object]] = {}
_LABELS: dict[cat.Path, str] = {}
_COMPILED: dict[int, tuple[Sequence[cat.Path], Candidates]] = {}


def folded_key(node: dict[object, object], key: str) -> object:
    """The first key of ``node`` (in order, as a scan finds it) equal to ``key`` once
    case-folded, or None. ``node`` has no ``key`` itself (the caller tried it)."""
    keys = tuple(node)
    answers = _KEY_SETS.get(keys)
    if answers is None:
        if len(_KEY_SETS) >= _MEMO_MAX:
            _KEY_SETS.clear()
        answers = _KEY_SETS[keys] = {}
    if key not in answers:
        folded = key.casefold()
        answers[key] = next(
            (k for k in keys if isinstance(k, str) and k.casefold() == folded), None)
    return answers[key]


def get_key(node: Mapping[object, object], key: str) -> object:
    """``node[key]`` matched case-insensitively, by a scan (any mapping), or MISSING."""
    if key in node:
        return node[key]
    folded = key.casefold()
    for candidate, value in node.items():
        if isinstance(candidate, str) and candidate.casefold() == folded:
            return value
    return MISSING


def label(path: cat.Path) -> str:
    """A path as people read it: ``properties.log.sourceIPs.[0]``."""
    text = _LABELS.get(path)
    if text is None:  # paths come from the field maps: a few hundred at most
        text = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path) or "record"
        if len(_LABELS) >= _MEMO_MAX:
            _LABELS.clear()
        _LABELS[path] = text
    return text


def walk(node: object, path: cat.Path, depth: int, decode: Callable[[str, str], object]
         ) -> object:
    """The value at ``path[depth:]`` from ``node``, or MISSING. A string met on the way is
    JSON for ``decode(label of the path so far, text)`` to read (AKS ``properties.log``)."""
    for key in path[depth:]:
        if type(node) is dict and type(key) is str:  # the common step, first
            found = node.get(key, MISSING)
            if found is MISSING:
                actual = folded_key(node, key)
                if actual is None:
                    return MISSING
                found = node[actual]
            node = found
            depth += 1
            continue
        if isinstance(node, str):
            node = decode(label(path[:depth]), node)
        if isinstance(key, int):
            ok = isinstance(node, list) and -len(node) <= key < len(node)
            node = node[key] if ok and isinstance(node, list) else MISSING
        elif isinstance(node, Mapping):  # rare: JSON decoded from a string on the way
            node = get_key(node, key)
        else:
            return MISSING
        if node is MISSING:
            return MISSING
        depth += 1
    return node


KeySet = tuple[object, ...]
"""A dict's keys in order, as returned by :func:`key_set` (one object per distinct set)."""
_INTERNED: dict[KeySet, KeySet] = {}


def key_set(node: dict[object, object]) -> KeySet:
    """The keys of ``node``, interned: one object per distinct key set, so tables can be
    keyed by its id and the tuple is hashed once per dict, not once per field."""
    keys = tuple(node)
    interned = _INTERNED.get(keys)
    if interned is None:
        if len(_INTERNED) >= _MEMO_MAX:
            _INTERNED.clear()  # entries keyed by an old set's id check it is still that set
        interned = _INTERNED[keys] = keys
    return interned


class Candidates:
    """A field's candidate paths; :meth:`viable` drops those a record's keys rule out."""

    __slots__ = ("_viable", "labels", "paths")

    def __init__(self, paths: Sequence[cat.Path]) -> None:
        self.paths = tuple(paths)
        self.labels = tuple(label(path) for path in self.paths)
        # id of a key set -> (it, (index, the record's spelling of the first key) of each
        # candidate whose first key the set has)
        self._viable: dict[int, tuple[KeySet, tuple[tuple[int, object], ...]]] = {}

    def viable(self, record: dict[object, object], keys: KeySet
               ) -> tuple[tuple[int, object], ...]:
        """(index, key of ``record``) of the candidates whose first step finds a value in
        ``record`` (whose keys are ``keys``), best first; an empty path is the record.

        Deeper steps are left to the caller: pruning them too (per key set of each nested
        dict) was measured slower in Python than walking the few candidates left.
        """
        known = self._viable.get(id(keys))
        if known is None or known[0] is not keys:
            if len(self._viable) >= _MEMO_MAX:
                self._viable.clear()
            known = self._viable[id(keys)] = (keys, tuple(self._first_keys(record)))
        return known[1]

    def _first_keys(self, record: dict[object, object]) -> Iterator[tuple[int, object]]:
        for index, path in enumerate(self.paths):
            if not path:
                yield index, None
            elif isinstance(key := path[0], str):
                actual = key if key in record else folded_key(record, key)
                if actual is not None:
                    yield index, actual


def candidates(paths: Sequence[cat.Path]) -> Candidates:
    """``paths`` compiled, once per lasting tuple (a field map's): keyed by identity, the
    tuple kept so that an id reused by another tuple is noticed."""
    known = _COMPILED.get(id(paths))
    if known is None or known[0] is not paths:
        if len(_COMPILED) >= _MEMO_MAX:
            _COMPILED.clear()
        known = _COMPILED[id(paths)] = (paths, Candidates(paths))
    return known[1]
