"""``interlace serve`` keeps glibc from moving large blocks into the heap after start-up.

Each check runs in a fresh interpreter (the setting is per process): it frees a 4 MiB block, which
by default raises glibc's mmap threshold to 4 MiB, then holds a 512 KiB one and reads from
``mallinfo2`` whether that one got a mapping of its own. Without the setting it does not (the
baseline shows the check can tell); with it, it does.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = """
import ctypes, sys
from interlace.cli.allocator import map_large_blocks

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
print(map_large_blocks() if sys.argv[1] == "fix" else "-")
big = bytearray(4 << 20)
del big  # freed: glibc raises its threshold to 4 MiB unless it is fixed
before = libc.mallinfo2().hblkhd
held = bytearray(512 << 10)
print(libc.mallinfo2().hblkhd - before >= len(held))
"""

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)


def _probe(mode: str, **env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=True,
    )
    return done.stdout.split()


@glibc
def test_a_large_block_keeps_its_own_mapping_after_a_larger_one_was_freed() -> None:
    assert _probe("baseline") == ["-", "False"]  # glibc's default: the 512 KiB block is in the heap
    assert _probe("fix") == ["True", "True"]


@glibc
def test_the_operators_own_threshold_wins() -> None:
    assert _probe("fix", MALLOC_MMAP_THRESHOLD_=str(8 << 20)) == ["False", "False"]
