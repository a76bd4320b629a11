"""Where things live in a log, beyond the C2SP tlog-tiles paths (``core.tiles``).

A log is a tlog-tiles tree plus the history of every checkpoint it ever published::

    checkpoint                    the latest signed checkpoint (tlog-tiles; the ONE mutable
                                  object; may live in separate storage: the "head")
    tile/<L>/<N>[.p/<W>]          hash tiles (write-once)
    tile/entries/<N>[.p/<W>]      entry bundles (write-once)
    checkpoints/<size>            every published checkpoint, write-once, named by tree size
                                  (20 digits, so that names sort by size)

A log never signs two checkpoints of the same size with different roots, so a size names
a checkpoint uniquely and re-publishing the same size writes identical bytes.
"""

from __future__ import annotations

from auditseal.errors import FormatError

HEAD_KEY = "checkpoint"
HISTORY_PREFIX = "checkpoints/"
_SIZE_DIGITS = 20


def history_key(size: int) -> str:
    """Key of the immutable copy of the checkpoint for tree size ``size``."""
    if size < 0:
        raise ValueError("tree size must be >= 0")
    return f"{HISTORY_PREFIX}{size:0{_SIZE_DIGITS}d}"


def parse_history_key(key: str) -> int:
    """Tree size named by a history key.

    Raises:
        FormatError: ``key`` is not a canonical history key.
    """
    digits = key.removeprefix(HISTORY_PREFIX)
    if digits == key or len(digits) != _SIZE_DIGITS or not digits.isdigit():
        raise FormatError(f"not a checkpoint history key: {key!r}")
    return int(digits)
