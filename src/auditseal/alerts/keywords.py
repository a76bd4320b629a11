"""Every Sigma keyword of the loaded rules, found in one scan of a record's text.

Concept: the *keyword search* of the evaluator (issue 4, "<= 20 us per event"). A keyword
(a value without a field) matches when the record's lower-cased JSON text contains it.
Searched rule by rule, each keyword rule scanned the whole text again (the Activity Log
keyword rules of SigmaHQ hit every Activity Log record, three scans of a few KB each).
Here one regular expression alternates every keyword registered; ``findall`` gives, in one
scan, the keywords found, shared by every rule through :meth:`EventView.keywords
<auditseal.alerts.fields.EventView.keywords>`.

Exactness: a keyword ``findall`` returns occurs in the text. One it does not return may
still occur when an occurrence of another keyword overlaps it (``findall`` consumes
non-overlapping matches); such a keyword is *hideable* (it is a substring of another, or
another ends with a beginning of it), and a rule searching for one of those falls back to
its own scan when the shared one did not find it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["KEYWORDS", "Keywords"]


class Keywords:
    """The registry of keywords and its combined scan (rebuilt when keywords are added)."""

    def __init__(self) -> None:
        """No keyword yet."""
        self._needles: dict[str, None] = {}
        self._findall: Callable[[str], list[str]] | None = None
        self._findall_ascii: Callable[[bytes], list[bytes]] = _none
        self._of_bytes: dict[bytes, str] = {}
        self.hideable: frozenset[str] = frozenset()
        self.version = 0
        """Changes whenever the scan does (a view's memo of an older scan is stale)."""

    def register(self, needles: tuple[str, ...]) -> None:
        """Add the (non-empty, lower-cased) keywords of one detection item."""
        new = [n for n in needles if n not in self._needles]
        if new:
            self._needles.update(dict.fromkeys(new))
            self._findall = None
            self.version += 1

    def settles(self, needle: str) -> bool:
        """Whether :meth:`scan` not finding ``needle`` means the text does not hold it."""
        if self._findall is None:
            self._build()
        return needle in self._needles and needle not in self.hideable

    def scan(self, text: str) -> frozenset[str]:
        """The registered keywords found in ``text`` (see the module docstring)."""
        if self._findall is None:
            self._build()
            assert self._findall is not None
        return frozenset(self._findall(text))

    def scan_ascii(self, lowered: bytes) -> frozenset[str]:
        """:meth:`scan` of an ASCII text given as lower-cased bytes (no decoding needed:
        ``bytes.lower`` is ``str.lower`` on ASCII, and a non-ASCII keyword is not in it)."""
        if self._findall is None:
            self._build()
        return frozenset(map(self._of_bytes.__getitem__, self._findall_ascii(lowered)))

    def _build(self) -> None:
        needles = sorted(self._needles, key=len, reverse=True)
        self._findall = re.compile("|".join(map(re.escape, needles))).findall
        self._of_bytes = {n.encode(): n for n in needles if n.isascii()}
        self._findall_ascii = (re.compile(b"|".join(map(re.escape, self._of_bytes))).findall
                               if self._of_bytes else _none)
        self.hideable = frozenset(n for n in needles if _hideable(n, needles))


def _hideable(needle: str, needles: list[str]) -> bool:
    """Whether a match of another keyword may overlap an occurrence of ``needle``."""
    return any(other != needle and (needle in other or other.startswith(needle)
                                    or needle.startswith(other)
                                    or any(other.endswith(needle[:i])
                                           for i in range(1, len(needle))))
               for other in needles)


def _none(_text: bytes) -> list[bytes]:
    return []


KEYWORDS = Keywords()
"""The process-wide registry: every rule set compiled registers its keywords here."""
