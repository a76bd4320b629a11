"""glibc allocator settings for the serving process, so its memory stays flat under load.

Concept: the service's *memory bound* (issue 5: "memory flat" under a 60 s load run). The
HTTP service holds request bodies of up to ``max_request_bytes`` (~0.5 MB per 250-event
batch) in up to ~40 thread-pool threads at once. With glibc's defaults two things keep
freed bodies resident:

* each thread gets its own malloc arena (up to 8 per core), and a freed body stays in the
  arena of the thread that held it;
* the mmap threshold is *dynamic*: after the first large block is freed, glibc raises the
  threshold to that size, so later bodies come from the arenas instead of mmap and are
  not returned to the system at once.

Fixing the mmap threshold (which also turns off the dynamic adjustment) makes every large
buffer an mmap that ``free`` gives back at once, and two arenas bound the rest. Measured
(``python -m bench --only service``, 20 s per variant, same machine, one run each):
server RSS at the end of the run 283 / 328 / 289 MB without, 200 / 236 / 201 MB with,
throughput within the run-to-run noise. There is no library for this; ``mallopt`` is
glibc's documented interface (mallopt(3)). On other C libraries nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["MMAP_THRESHOLD_BYTES", "SERVE_ARENAS", "bound_allocator"]

_M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>
_M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 << 10
"""Blocks of 128 KiB and more (glibc's initial default) always come from mmap."""
SERVE_ARENAS = 2
"""Malloc arenas for the whole process (glibc's default is 8 per core)."""


def bound_allocator(arenas: int = SERVE_ARENAS,
                    mmap_threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Apply the settings above; whether the C library took them (False off glibc).

    Call it before the threads that allocate start: an arena, once created, stays.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    return bool(mallopt(_M_ARENA_MAX, arenas)) and bool(
        mallopt(_M_MMAP_THRESHOLD, mmap_threshold_bytes))
