"""Single-quoted pseudo-JSON: reading a JavaScript object literal as JSON.

Some Azure producers (Function App logs, for one) write records and ``properties`` as
JavaScript object literals instead of JSON: ``{'appName':'x', ...}`` with single-quoted
strings, bare keys and trailing commas. Like Azure's own consumers, this module
re-tokenises such text into JSON (ECMA-262 "Object Initializer" and "String Literals")
rather than guessing with regexes, and lets orjson decide whether the result is valid.
Text it cannot read gives :data:`MISSING`.
"""

from __future__ import annotations

import re
from typing import Final

import orjson

__all__ = ["MISSING", "read_js_literal"]

MISSING: Final = object()
"""Returned when the text is not a literal this reader accepts (``None`` is JSON null)."""


def read_js_literal(text: str) -> object:
    """Read a JavaScript object literal as JSON.

    Args:
        text: the literal, e.g. ``{'appName':'x', level: 4,}``.

    Returns:
        The decoded value, or :data:`MISSING` when ``text`` is not a literal this reader
        accepts.
    """
    pieces: list[str] = []
    end = 0
    for match in _JS_TOKEN.finditer(text):
        if match.start() != end:
            return MISSING  # a character no piece accepts
        piece, end = match.group(), match.end()
        if piece[0] in "'\"":
            try:
                piece = orjson.dumps(_JS_ESCAPE.sub(_js_unescape, piece[1:-1])).decode()
            except orjson.JSONEncodeError:
                return MISSING  # e.g. a lone surrogate escape: no valid string to make
        elif piece[0].isalpha() or piece[0] in "_$":
            piece = piece if piece in ("true", "false", "null") else f'"{piece}"'
        elif piece in "}]" and pieces and pieces[-1] == ",":
            pieces.pop()  # JavaScript allows a trailing comma, JSON does not
        if not piece.isspace():
            pieces.append(piece)
    if end != len(text):
        return MISSING
    try:
        return orjson.loads("".join(pieces))
    except orjson.JSONDecodeError:
        return MISSING


_JS_TOKEN = re.compile(
    r"""\s+|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[{}\[\],:]|-?[\d.][\w.+-]*|[A-Za-z_$][\w$]*""",
    re.DOTALL,
)
_JS_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.DOTALL)
_JS_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _js_unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] in "ux" and len(code) > 1:
        return chr(int(code[1:], 16))
    return _JS_ESCAPES.get(code, code)
