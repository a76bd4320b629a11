"""The byte screen: which rules could match a record, read from its raw JSON in one pass.

Concept: the *screen* of the alert engine (issue 4, "<= 20 us per event" for the whole
pack). Every rule's :class:`~auditseal.alerts.prefilter.Needles` (literals one of which the
record must show for the rule to possibly match) go into one Aho-Corasick automaton
(``ahocorasick-rs``, Rust's ``aho-corasick`` crate); a record is scanned once, before it is
decoded, and only the rules whose needles it shows are evaluated, in full, by the general
evaluator; a record that shows none is never decoded. Why a library, and this one: a
pure-Python scan costs more than decoding the record (``split`` + set intersection 4-8 us,
each substring ~1.4 us, a trie regex 10-30 us) and ``pyahocorasick`` walks its trie at
~7 ns a character (14 us for a 2 KB record, three decodes); ``ahocorasick-rs`` scans the
same record with every needle in ~4 us (docs/benchmarks.md).

The scanned text is the record lower-cased as the evaluator lower-cases each value
(``str.lower``, which maps characters one by one, so the text spells every lowered string
value; ``bytes.lower`` when the record is ASCII, where both agree), with runs of ``\\``
before ``/`` deleted (``\\/`` is an escaped slash, also in JSON held in strings) and every
other ``\\`` turned into ``"``. Why this is sound (needles hold no ``"``, ``\\`` or control
character, see :mod:`~auditseal.alerts.prefilter`):

* every string value, at any depth of JSON held in strings, is then spelled in the text as
  the evaluator sees it, lower-cased, between two ``"``, except that escaped characters
  (``\\n``, ``\\"``...) turn into ``"`` + a letter: a needle cannot span them, and a value
  starting or ending with one was not equal to a needle anyway; deleting a backslash only
  ever adds matches;
* so an *exact* needle is looked for as ``"needle"``, a *prefix* as ``"needle``, a *suffix*
  as ``needle"`` and a *contains* needle as it is;
* a *number* needle (an integer) as a string value or a number token: between one of
  ``":[,-``, JSON whitespace or the letter of an escaped one (``\\n`` in JSON held in a
  string) and one of ``",]}.``, JSON whitespace (``50126.0`` ends with ``.0``); every
  digit, ``e`` and digit or sign is read, when it is in a number token, as Python reads
  it, and hits the rules of the integer it equals (``5.0126e4`` is 50126);
* records with a ``\\u`` escape (the escaped character is not spelled) or that are not
  UTF-8 are not screened; non-ASCII records are, but then rules that lost a non-ASCII
  literal (``Needles.ascii_only``) are hits whatever the text.

Without ``ahocorasick-rs`` installed the screen is off and every record is decoded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from auditseal.alerts.prefilter import Needles

try:  # pragma: no branch - a dependency; without it the engine works, only slower
    from ahocorasick_rs import BytesAhoCorasick, Implementation
except ImportError:  # pragma: no cover
    BytesAhoCorasick = None  # type: ignore[assignment,misc]

__all__ = ["AVAILABLE", "Screen", "patterns", "scan_text"]

AVAILABLE = BytesAhoCorasick is not None
"""Whether the screen can run (``ahocorasick-rs`` is installed)."""

_SLASHES = re.compile(rb"\\+/")
_BEFORE_NUMBER = b'":[,- \t\n\rntr'
_AFTER_NUMBER = b'",]} \t\n\r.'
"""Around a number needle: ``"`` for a string value, else what may stand beside a number
token; the letters of escaped whitespace in JSON held in strings; ``.`` for ``50126.0``."""
_EXPONENTS = tuple(bytes((digit,)) + b"e" + bytes((after,)) for digit in b"0123456789"
                   for after in b"0123456789+-")
"""Where a number may be spelled with an exponent (``5.0126e4``); each is checked, as
identifiers hold them too ("9e70" in a GUID)."""
_TOKEN_START = b'":[, \t\n\rntr'
_MANTISSA = frozenset(b"0123456789.")
_EXPONENT_TOKEN = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?e[+-]?[0-9]+")


def scan_text(raw: bytes) -> bytes | None:
    """The text the needles are looked for in (see the module docstring), or None when the
    record cannot be screened."""
    if raw.isascii():
        text = raw.lower()
    else:
        try:
            text = raw.decode().lower().encode()
        except UnicodeDecodeError:
            return None
    if b"\\" not in text:
        return text
    if b"\\u" in text:
        return None
    if b"\\/" in text:
        text = _SLASHES.sub(b"/", text)
    return text.replace(b"\\", b'"')


def patterns(needles: Sequence[Needles | None]) -> dict[bytes, set[int]]:
    """The byte patterns of every rule's needles: pattern -> positions of the rules."""
    keys: dict[bytes, set[int]] = {}
    for position, found in enumerate(needles):
        if found is None:
            continue
        spelled = [*(b'"' + n + b'"' for n in found.exact), *(b'"' + n for n in found.prefixes),
                   *(n + b'"' for n in found.suffixes), *found.contains,
                   *(bytes((before,)) + n + bytes((after,)) for n in found.numbers
                     for before in _BEFORE_NUMBER for after in _AFTER_NUMBER)]
        for key in spelled:
            keys.setdefault(key, set()).add(position)
    return keys


class Screen:
    """The rules of a set whose needles a record shows, by position in the set."""

    __slots__ = ("_automaton", "_groups", "_non_ascii", "_numbers", "unscreened")

    def __init__(self, needles: Sequence[Needles | None]) -> None:
        """Index the needles of rules ``0..n-1``; None means "no condition known"."""
        self.unscreened: frozenset[int] = frozenset(
            i for i, n in enumerate(needles) if n is None or not AVAILABLE)
        """Rules the screen says nothing about (evaluate them the general way)."""
        numbers: dict[str, set[int]] = {}
        for position, found in enumerate(needles):
            for number in found.numbers if found is not None else ():
                numbers.setdefault(number.decode(), set()).add(position)
        self._numbers = {n: frozenset(p) for n, p in numbers.items()}
        self._non_ascii = frozenset(i for i, n in enumerate(needles)
                                    if n is not None and n.ascii_only)
        keys = patterns(needles)
        self._groups = [frozenset(positions) for positions in keys.values()]
        if numbers:  # an empty group: an exponent to read (see hits)
            self._groups.extend(frozenset() for _ in _EXPONENTS)
        keys_list = list(keys) + (list(_EXPONENTS) if numbers else [])
        self._automaton = (BytesAhoCorasick(keys_list, implementation=Implementation.DFA)
                           if keys_list and AVAILABLE else None)

    def hits(self, raw: bytes) -> set[int] | None:
        """Screened rules (positions) whose needles the record shows; None when the record
        cannot be screened (every rule must then be judged the general way)."""
        text = scan_text(raw) if AVAILABLE else None
        if text is None:
            return None
        found: set[int] = set()
        if self._automaton is not None:
            groups = self._groups
            for key, start, _ in self._automaton.find_matches_as_indexes(text, overlapping=True):
                group = groups[key]
                if group:
                    found |= group
                else:
                    self._exponent(text, start, found)
        if self._non_ascii and not raw.isascii():
            found |= self._non_ascii
        return found

    def _exponent(self, text: bytes, start: int, found: set[int]) -> None:
        """The number rules hit by the number token whose exponent starts at ``start + 1``,
        if it is one (as ``as_text`` reads it, ``5.0126e4`` is 50126)."""
        low = start
        while low > 0 and text[low - 1] in _MANTISSA:
            low -= 1
        if low and text[low - 1] == 0x2D:  # "-": the sign
            low -= 1
        if low and text[low - 1] not in _TOKEN_START:
            return  # inside an identifier ("4732-9e70")
        token = _EXPONENT_TOKEN.match(text, low)
        if token is None or (token.end() < len(text) and text[token.end()] not in _AFTER_NUMBER):
            return
        value = float(token.group())
        if value.is_integer():
            found |= self._numbers.get(str(int(value)), frozenset())
