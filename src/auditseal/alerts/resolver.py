"""One walk of a decoded record for many field paths, planned once per key shape.

Concept: the *path resolver* under :class:`~auditseal.alerts.fields.EventView` (issue 4,
"evaluating the whole built-in pack plus the SigmaHQ Azure rules in streaming mode costs
<= 20 us per event"). Resolving a Sigma field means following dotted paths through the
record with keys matched case-insensitively, keys that hold dots (claim URIs) spanning
several segments, lists fanning out and strings that hold JSON decoded on the way
(:mod:`auditseal.alerts.fields` states those rules). Done one path at a time, every path
and every level re-did the case-insensitive search, though records of one log share a
handful of key shapes.

Here a set of paths pending at a node is a :class:`State` (interned: (path id, depth)
pairs). Which actual key answers which pending path depends only on the node's keys, in
order (its *shape*), so a state compiles, once per shape, a *plan*: for each key to follow,
the paths that end there and the state to continue with. A record then costs one
``tuple(node)`` and one dict lookup per object visited, for all paths at once; paths the
record lacks cost nothing. The engine walks the union of its rules' fields per log in one
pass (:meth:`EventView.prefetch`); any other path is walked alone on demand, through the
same plans.

Why hand-written: JSONPath/JMESPath/glom evaluate one expression at a time and know neither
case-insensitive keys, nor dotted keys, nor JSON held in strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import orjson

__all__ = ["Ends", "Path", "State", "path_id", "path_of", "state_for", "walk"]

Path = tuple[str, ...]
Ends = dict[int, Sequence[object]]
"""Path id -> the nodes the path reaches in a record, in depth-first order (a tuple when
the path crossed no list, a list when it did)."""

_PATHS: list[Path] = []
_IDS: dict[Path, int] = {}


def path_id(path: Path) -> int:
    """The interned id of a path (paths come from rule fields: a bounded set)."""
    found = _IDS.get(path)
    if found is None:
        found = _IDS[path] = len(_PATHS)
        _PATHS.append(path)
    return found


def path_of(pid: int) -> Path:
    """The path of an id."""
    return _PATHS[pid]


Plan = tuple[tuple[tuple[object, int], ...], tuple[tuple[object, "State"], ...]]
"""((key, id of a path ending there) for every path ending at a key, (key, the state
continuing below it) for the keys paths go through)."""

_MAX_PLANS = 1024
"""Plans kept per state: bounded memory on streams of ever-new shapes."""


class State:
    """Paths pending at one node, and their plans by the node's key shape."""

    __slots__ = ("_loose", "last", "pending", "plans")

    def __init__(self, pending: tuple[tuple[int, int], ...]) -> None:
        """``pending``: (path id, depth of the next segment) pairs."""
        self.pending = pending
        self.plans: dict[tuple[object, ...], Plan] = {}
        self._loose: dict[tuple[object, ...], Plan] = {}
        self.last: tuple[tuple[object, ...], Plan] | None = None
        """The shape met last and its plan: records of one log repeat a shape, and comparing
        two key tuples (item by item, the keys being the same objects) costs less than
        hashing one."""

    def plan(self, shape: tuple[object, ...], *, direct: bool = True) -> Plan:
        """The plan for objects with these keys (``direct=False``: dotted keys only)."""
        cache = self.plans if direct else self._loose
        found = cache.get(shape)
        if found is None:
            if len(cache) >= _MAX_PLANS:
                cache.clear()
            found = cache[shape] = _compile(self.pending, shape, direct=direct)
        return found


_STATES: dict[tuple[tuple[int, int], ...], State] = {}


def state_for(pending: tuple[tuple[int, int], ...]) -> State:
    """The interned state of these pending (path id, depth) pairs."""
    found = _STATES.get(pending)
    if found is None:
        found = _STATES[pending] = State(pending)
    return found


def _compile(pending: tuple[tuple[int, int], ...], shape: tuple[object, ...], *,
             direct: bool) -> Plan:
    """Where each pending path goes in an object of this shape.

    The same choice the one-path walk makes: the key as spelled, else the key equal to it
    lower-cased (the last of several such keys), else the first key holding dots that
    spans the next segments; a path none of these answers ends here without values.
    """
    present = frozenset(shape)
    folded: dict[object, object] | None = None
    dotted: tuple[str, ...] = ()
    groups: dict[object, tuple[list[tuple[int, int]], list[int]]] = {}
    for pid, depth in pending:
        path = _PATHS[pid]
        segment = path[depth]
        key: object = None
        after = depth + 1
        if direct and segment in present:
            key = segment
        else:
            if folded is None:
                folded = {(k.lower() if isinstance(k, str) else k): k for k in shape}
                dotted = tuple(k for k in folded if isinstance(k, str) and "." in k)
            if direct:
                key = folded.get(segment.lower())
            if key is None and dotted and depth + 1 < len(path):
                rest = ".".join(path[depth:]).lower()
                for name in dotted:
                    if rest == name or rest.startswith(name + "."):
                        key, after = folded[name], depth + name.count(".") + 1
                        break
            if key is None:
                continue
        going, ending = groups.setdefault(key, ([], []))
        if after == len(path):
            ending.append(pid)
        else:
            going.append((pid, after))
    return (tuple((key, pid) for key, (_, ending) in groups.items() for pid in ending),
            tuple((key, state_for(tuple(going))) for key, (going, _) in groups.items() if going))


_ABSENT = object()


def walk(node: object, state: State, ends: Ends, decoded: dict[int, object],
         fanned: bool = False) -> None:
    """Follow every path of ``state`` from ``node``, appending what they reach to ``ends``.

    ``decoded`` memoizes JSON held in strings by the string's id; it must stay with the
    record (the decoded values it keeps alive are what keeps those ids unique). ``fanned``:
    a list was crossed on the way here. Until then a path reaches at most one node (a
    node's plan sends each pending path to one key, a string decodes to one value) and the
    paths of one walk were not walked before: each path's nodes are stored as a new
    1-tuple (why: no lookup and branch per path). Past a list they are appended to a list.
    """
    if type(node) is dict:
        shape = tuple(node)
        last = state.last
        if last is not None and last[0] == shape:
            plan = last[1]
        else:
            known = state.plans.get(shape)
            plan = state.plan(shape) if known is None else known
            state.last = (shape, plan)
        endings, goings = plan
        if not fanned:
            for key, pid in endings:
                ends[pid] = (node[key],)
        else:
            _add_fanned(node, endings, ends)
        for key, going in goings:
            walk(node[key], going, ends, decoded, fanned)
    elif isinstance(node, list):
        for item in node:
            walk(item, state, ends, decoded, True)
    elif isinstance(node, str):
        # A JSON object or list ends with "}" or "]": other strings cannot decode (the
        # check saves raising, and catching, orjson's error on truncated bodies).
        if node.lstrip()[:1] in ("{", "[") and node.rstrip()[-1:] in ("}", "]"):
            value = decoded.get(id(node), _ABSENT)
            if value is _ABSENT:
                try:
                    value = orjson.loads(node)
                except orjson.JSONDecodeError:
                    value = None
                decoded[id(node)] = value
            if value is not None:
                walk(value, state, ends, decoded, fanned)
    elif isinstance(node, dict):
        # Not a plain dict (a caller's Mapping subclass): as the one-path walk always did,
        # only keys holding dots are followed there.
        endings, goings = state.plan(tuple(node), direct=False)
        _add_fanned(node, endings, ends)
        for key, going in goings:
            walk(node[key], going, ends, decoded, True)


def _add_fanned(node: Mapping[object, object], endings: Sequence[tuple[object, int]],
                ends: Ends) -> None:
    """Append what ``endings`` reach in ``node`` to ``ends``: past a list, a path may
    reach several nodes, so each path's values are a list."""
    for key, pid in endings:
        found = ends.get(pid)
        if found is None:
            ends[pid] = [node[key]]
        else:
            cast(list[object], found).append(node[key])
