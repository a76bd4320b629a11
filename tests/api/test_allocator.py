"""The serving process's allocator bound takes effect on glibc (Linux) and is a no-op elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from auditseal.api.allocator import bound_allocator

_PROBE = """
import sys, threading
if sys.argv[1] == "bound":
    from auditseal.api.allocator import bound_allocator
    assert bound_allocator() is True
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS:")).split()[1])
base = rss()
keep = []
barrier = threading.Barrier(16)
def work():
    for _ in range(6):
        bodies = []
        for _ in range(4):
            body = bytearray(480 << 10)
            body[::4096] = b"x" * len(body[::4096])  # touch every page
            bodies.append(body)
            keep.append(bytes(2000))  # a small survivor after each body, as a server keeps
        barrier.wait()
        del bodies
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(rss() - base)
"""


def _retained_kb(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], check=True,
                          capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_request_bodies_go_back_to_the_system() -> None:
    """16 threads x 6 rounds x 4 bodies of 480 KiB, a small survivor after each body."""
    default_kb = _retained_kb("default")
    if default_kb < 16 << 10:
        pytest.skip(f"this C library returned the bodies by itself ({default_kb} KiB kept)")
    assert _retained_kb("bound") < 8 << 10, default_kb  # measured here: ~0.9 MB vs ~39 MB


def test_off_glibc_nothing_is_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert bound_allocator() is False
