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
one (:func:`folded_key`), and which of a field's candidates (:func:`viable`) can find
anything in the record at all; a field with many nested candidates (``caller``) walks them
as a tree, pruned by the key set of each nested dict. The values are still read from each
record, in candidate order, so the answers are those of looking up every candidate in turn
(tests/unit/test_normalize_paths.py compares the two on the corpus and generated records).
Every table here is bounded; a record with ever-new keys only costs a refill.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar

import orjson

from auditseal.ingest import azure_categories as cat
from auditseal.ingest.jsliteral import MISSING, read_js_literal

__all__ = [
    "Candidates", "Convert", "KeySet", "RecordReader", "Viable", "candidates", "every",
    "folded_key", "get_key", "key_set", "label", "viable", "walk",
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
    if len(node) <= _SCAN_MAX:  # small (nested) dicts: scanning beats naming the key set
        folded = _casefold(key)
        for k in node:
            if type(k) is str and (_FOLDS.get(k) or _casefold(k)) == folded:
                return k
        return None
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


_SCAN_MAX = 4
"""Up to this many keys, :func:`folded_key` scans the dict's keys (their case-folds
memoized) rather than building and looking up its key set: a miss in ``identity.claims``
was ~0.5 us, most of it ``tuple(node)`` and hashing it."""
_FOLDS: dict[str, str] = {}


def _casefold(key: str) -> str:
    folded = _FOLDS.get(key)
    if folded is None:
        if len(_FOLDS) >= _MEMO_MAX:
            _FOLDS.clear()
        folded = _FOLDS[key] = key.casefold()
    return folded


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
    """A field's candidate paths and their labels; :meth:`viable` keeps those a record's
    keys do not rule out (memoized per key set by :func:`viable`)."""

    __slots__ = ("labels", "paths")

    def __init__(self, paths: Sequence[cat.Path]) -> None:
        self.paths = tuple(paths)
        self.labels = tuple(label(path) for path in self.paths)

    def viable(self, record: dict[object, object]) -> Iterator[tuple[int, object]]:
        """(index, key of ``record``) of the candidates whose first step finds a value in
        ``record``, best first; an empty path is the record. Deeper steps are left to the
        reader (:meth:`RecordReader.take`)."""
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


Viable = tuple[tuple[object, cat.Path, str], ...]
"""(the record's spelling of the first key, the path, its label) of each candidate that
:meth:`Candidates.viable` keeps, best first."""
_VIABLE: dict[tuple[int, int], tuple[Sequence[cat.Path], KeySet, Viable]] = {}
_WHOLE = object()
"""The key of an :func:`every` candidate: look the whole path up from the record."""


def every(paths: Sequence[cat.Path]) -> Viable:
    """Each of ``paths`` as a candidate of :meth:`RecordReader.take`, none pruned."""
    return tuple((_WHOLE, path, label(path)) for path in paths)


def viable(paths: Sequence[cat.Path], record: dict[object, object], keys: KeySet) -> Viable:
    """``candidates(paths).viable(record)`` with each path and label, worked out once per
    (lasting tuple, key set ``keys`` of ``record``): one lookup on the hot path."""
    known = _VIABLE.get((id(paths), id(keys)))
    if known is None or known[0] is not paths or known[1] is not keys:
        compiled = candidates(paths)
        found = tuple((key, compiled.paths[index], compiled.labels[index])
                      for index, key in compiled.viable(record))
        if len(_VIABLE) >= _MEMO_MAX:
            _VIABLE.clear()
        known = _VIABLE[(id(paths), id(keys))] = (paths, keys, found)
    return known[2]


_T = TypeVar("_T")
Convert = Callable[[str, object, str], _T | None]
"""(field name, raw value, where) -> converted value, or None after noting a problem."""


class RecordReader:
    """Case-insensitive path lookups over one record, decoding JSON held in strings once.

    Hot (every indexed event): a field's candidate paths are walked together, compiled
    (:func:`viable`), with which keys are present known per key set.
    """

    __slots__ = ("_decoded", "_keys", "event", "problems")

    def __init__(self, event: Mapping[str, object]) -> None:
        self.event = event
        self.problems: list[str] = []
        self._decoded: dict[str, object] = {}
        self._keys = key_set(event) if type(event) is dict else None

    def lookup(self, path: cat.Path, node: object = MISSING, depth: int = 0) -> object:
        """The value at ``path`` (or at ``path[depth:]`` from ``node``), or ``MISSING``."""
        return walk(self.event if node is MISSING else node, path, depth, self._decode)

    @property
    def keys(self) -> KeySet | None:
        """The record's key set (None when it is not a dict: :func:`every` applies)."""
        return self._keys

    def first(self, field: str, paths: Sequence[cat.Path], convert: Convert[_T]) -> _T | None:
        """The first candidate path whose value converts; ``convert`` notes what it rejects.

        ``paths`` should be a lasting tuple (a field map's): which candidates the record's
        keys rule out is worked out once per key set, not looked up for every record.
        """
        keys = self._keys
        found = every(paths) if keys is None else viable(paths, self.event, keys)  # type: ignore[arg-type]
        return self.take(field, found, convert)

    def take(self, field: str, found: Viable, convert: Convert[_T]) -> _T | None:
        """:meth:`first` over candidates already pruned by :func:`viable` (or :func:`every`
        for a record that is not a dict)."""
        event = self.event
        deep = _deep_values(found, event) if len(found) >= _DEEP_MIN else None
        if deep is not None:  # nested candidates pruned by the key sets met on the way
            for index, value in sorted(deep.items()):
                if value is None or value == "":
                    continue
                converted = convert(field, value, found[index][2])
                if converted is not None:
                    return converted
            return None
        for key, path, where in found:
            if key is _WHOLE:
                value = self.lookup(path)
            elif len(path) == 1:
                value = event[key]  # type: ignore[index]
            elif path:
                value = walk(event[key], path, 1, self._decode)  # type: ignore[index]
            else:
                value = event
            if value is MISSING or value is None or value == "":
                continue
            converted = convert(field, value, where)
            if converted is not None:
                return converted
        return None

    def first_of(self, field: str, paths: Sequence[cat.Path], convert: Convert[_T]
                 ) -> _T | None:
        """:meth:`first` for passing tuples: each candidate is looked up in turn."""
        for path in paths:
            value = self.lookup(path)
            if value is MISSING or value is None or value == "":
                continue
            converted = convert(field, value, label(path))
            if converted is not None:
                return converted
        return None

    def _decode(self, where: str, text: str) -> object:
        """JSON held in a string (AKS ``properties.log``), decoded once per path."""
        if where not in self._decoded:
            decoded: object = MISSING
            if text.lstrip()[:1] in ("{", "["):
                try:
                    decoded = orjson.loads(text)
                except orjson.JSONDecodeError:
                    decoded = read_js_literal(text)
                    if decoded is MISSING:
                        self.problems.append(f"{where} is not valid JSON")
                    else:
                        self.problems.append(f"{where} is not valid JSON; read it leniently")
            self._decoded[where] = decoded
        return self._decoded[where]


# --- nested candidates -----------------------------------------------------------------------
# A field such as ``caller`` has a dozen candidates below ``identity.claims``; walking each
# one costs a miss per candidate (~0.7 us). Walked together as a tree instead, each nested
# dict is met once and which of its next keys exist is memoized per key set, as the first
# step is by :func:`viable`. Only plain dicts are walked this way: a string (JSON to
# decode), a list or another mapping on the way sends the field back to walking each path.

_DEEP_MIN = 4
"""Candidates from which a field's paths are walked as a tree (fewer: one by one)."""
_Step = tuple[object, tuple[int, ...], "_Branch | None"]
"""(key, candidates ending there, the branch of the longer ones)."""


class _Branch:
    __slots__ = ("memo", "steps")

    def __init__(self, steps: tuple[_Step, ...]) -> None:
        self.steps = steps  # keys as the field maps spell them
        self.memo: dict[int, tuple[KeySet, tuple[_Step, ...]]] = {}

    def present(self, node: dict[object, object]) -> tuple[_Step, ...]:
        """The steps whose key ``node`` has (exactly, else case-folded), as ``node``
        spells it: worked out once per key set."""
        keys = key_set(node)
        known = self.memo.get(id(keys))
        if known is None or known[0] is not keys:
            if len(self.memo) >= _MEMO_MAX:
                self.memo.clear()
            known = self.memo[id(keys)] = (keys, tuple(
                (key if key in node else folded_key(node, key), ends, branch)
                for key, ends, branch in self.steps
                if type(key) is str and (key in node or folded_key(node, key) is not None)))
        return known[1]


_TREES: dict[int, tuple[Viable, _Branch | None]] = {}


def _branch(paths: Sequence[tuple[int, cat.Path]], depth: int) -> _Branch:
    """The tree of ``paths`` (candidate index, path) below ``depth``."""
    steps: dict[object, tuple[list[int], list[tuple[int, cat.Path]]]] = {}
    for index, path in paths:
        ends, longer = steps.setdefault(path[depth], ([], []))
        if len(path) == depth + 1:
            ends.append(index)
        else:
            longer.append((index, path))
    return _Branch(tuple((key, tuple(ends), _branch(longer, depth + 1) if longer else None)
                         for key, (ends, longer) in steps.items()))


def _tree(found: Viable) -> _Branch | None:
    """The first level of ``found`` (keys already as the record spells them), or None when
    some candidate is not a plain path of keys."""
    known = _TREES.get(id(found))
    if known is None or known[0] is not found:
        plain = all(key is not _WHOLE and path for key, path, _ in found)
        tree = None
        if plain:
            tree = _branch([(i, (key, *path[1:]))  # type: ignore[arg-type]
                            for i, (key, path, _) in enumerate(found)], 0)
        if len(_TREES) >= _MEMO_MAX:
            _TREES.clear()
        known = _TREES[id(found)] = (found, tree)
    return known[1]


def _deep_values(found: Viable, record: object) -> dict[int, object] | None:
    """Candidate index -> value of each candidate of ``found`` present in ``record``, or
    None when the tree walk does not apply (the caller then walks each path)."""
    if found[0][0] is _WHOLE or type(record) is not dict:
        return None  # not pruned by key set (:func:`every`): nothing to memoize
    tree = _tree(found)
    if tree is None:
        return None
    values: dict[int, object] = {}
    pending: list[tuple[tuple[_Step, ...], dict[object, object]]] = [(tree.steps, record)]
    while pending:
        steps, node = pending.pop()
        for key, ends, branch in steps:
            value = node[key]
            for index in ends:
                values[index] = value
            if branch is None:
                continue
            if type(value) is dict:
                pending.append((branch.present(value), value))
            elif isinstance(value, str | list | Mapping):
                return None  # JSON in a string, list indexes, other mappings: walk each
    return values
