"""Records of a log on which no rule can be a candidate, told from their bytes before the walk.

Concept: the *absence screen* of candidate selection (issue 4, "<= 20 us per event"). When
every rule of a log is gated (no rule is tried on all its records) the candidates of a
record come only from its gate values. An AKS audit record, say, is a candidate of its
rules only when ``properties.log.requestObject.roleRef.name`` is ``cluster-admin``, yet
finding that out walked the record and decoded the JSON held in ``properties.log`` (about
6 us), to learn, for nearly every record, that there is nothing to evaluate. A gate value
is, lower-cased, a substring of the record's text whenever the field holds it, so when no
gate value (exact, prefix or suffix) occurs in the lower-cased bytes no rule is a
candidate and the record is done without walking it.

Exactness: a gate value's characters must appear as written in the raw bytes. So the
screen is only used on records that are ASCII (``bytes.lower`` is then ``str.lower``) and
hold no ``\\u`` escape, and only for logs whose gate values all are *plain*: non-empty,
none of the characters JSON escapes or writes around values (quotes, backslash, slash,
braces, brackets, comma, colon, control characters: a field's JSON text, when it holds an
object or list, is re-encoded compactly and may differ from the bytes there only in
those), at least one character no number is written with (a number's text is its value
re-spelled: ``1.0`` reads ``1``), and on fields without derived values (``Status`` reads
``Success`` for a result code ``0``). Held in strings that hold JSON, the value's
characters are escaped twice, which leaves such characters as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from auditseal.alerts.gates import Table

__all__ = ["absence_screen"]

_UNPLAIN = re.compile(r'["\\/{}\[\],:\x00-\x1f\x7f]')
_NUMERIC = frozenset("0123456789.e+-")


def absence_screen(table: Table) -> Callable[[bytes], bool] | None:
    """A test of a record's bytes, False only when no rule of ``table`` is a candidate.

    None when the table cannot be screened: it has rules tried on every record, or a gate
    value that is not plain (see the module docstring).
    """
    if table.always:
        return None
    if not table.gates:
        return _never  # a log without rules (records of no log we know of)
    needles: set[str] = set()
    for ref, _, by_value, affixes in table.gates:
        if any(derived is not None for _, derived in ref.steps):
            return None
        needles.update(by_value)
        for prefixes, suffixes, _ in affixes:
            needles.update(prefixes)
            needles.update(suffixes)
    if not needles or not all(map(_plain, needles)):
        return None
    search = re.compile(b"|".join(re.escape(n.encode()) for n in sorted(needles))).search

    def may_match(raw: bytes) -> bool:
        if not raw.isascii() or b"\\u" in raw:
            return True  # a value's characters may be escaped: cannot tell
        return search(raw.lower()) is not None

    return may_match


def _plain(needle: str) -> bool:
    return (needle.isascii() and bool(needle) and _UNPLAIN.search(needle) is None
            and not _NUMERIC.issuperset(needle))


def _never(_raw: bytes) -> bool:
    return False
