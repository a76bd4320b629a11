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

import orjson

__all__ = ["Ends", "Path", "State", "path_id", "path_of", "state_for", "walk"]

Path = tuple[str, ...]
Ends = dict[int, list[object]]
"""Path id -> the nodes the path reaches in a record, in depth-first order."""

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


Step = tuple[object, "State | None", tuple[int, ...]]
"""(actual key, the state continuing below it or None, ids of the paths ending there)."""
Plan = tuple[Step, ...]

_MAX_PLANS = 1024
"""Plans kept per state: bounded memory on streams of ever-new shapes."""


class State:
    """Paths pending at one node, and their plans by the node's key shape."""

    __slots__ = ("_loose", "pending", "plans")

    def __init__(self, pending: tuple[tuple[int, int], ...]) -> None:
        """``pending``: (path id, depth of the next segment) pairs."""
        self.pending = pending
        self.plans: dict[tuple[object, ...], Plan] = {}
        self._loose: dict[tuple[object, ...], Plan] = {}

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
    return tuple((key, state_for(tuple(going)) if going else None, tuple(ending))
                 for key, (going, ending) in groups.items())


_ABSENT = object()


def walk(node: object, state: State, ends: Ends, decoded: dict[int, object]) -> None:
    """Follow every path of ``state`` from ``node``, appending what they reach to ``ends``.

    ``decoded`` memoizes JSON held in strings by the string's id; it must stay with the
    record (the decoded values it keeps alive are what keeps those ids unique).
    """
    if type(node) is dict:
        shape = tuple(node)
        plan = state.plans.get(shape)
        if plan is None:
            plan = state.plan(shape)
        for key, going, ending in plan:
            value = node[key]
            for pid in ending:
                found = ends.get(pid)
                if found is None:
                    ends[pid] = [value]
                else:
                    found.append(value)
            if going is not None:
                walk(value, going, ends, decoded)
    elif isinstance(node, list):
        for item in node:
            walk(item, state, ends, decoded)
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
                walk(value, state, ends, decoded)
    elif isinstance(node, dict):
        # Not a plain dict (a caller's Mapping subclass): as the one-path walk always did,
        # only keys holding dots are followed there.
        for key, going, ending in state.plan(tuple(node), direct=False):
            value = node[key]
            for pid in ending:
                ends.setdefault(pid, []).append(value)
            if going is not None:
                walk(value, going, ends, decoded)
