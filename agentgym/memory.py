"""Handing freed memory back to the operating system, and reading the process's peak.

glibc keeps the heap it grew for a large temporary (an update's activations, a
rollout's K/V cache) and the process stays that large until exit; ``malloc_trim``
returns the free part. Two process settings keep it from growing in the first place
(:func:`limit_retained_memory`; with them and micro_batch_tokens 1024 the quickstart
peaked at 3.02 GB instead of 4.01, at the same seconds per iteration):

  * glibc raises its mmap threshold each time a large mmapped block is freed, so after
    the first update activations come from the heap, fragment it and stay; a fixed
    1 MiB threshold keeps every large buffer mmapped, returned to the system on free;
  * oneDNN caches up to 1024 compiled primitives, one per matmul shape, and the
    update's shapes change with every batch; 64 are kept (ONEDNN_PRIMITIVE_CACHE_CAPACITY,
    unless the user set it). 16 would hold less but recompiles within one update
    step: tools/bench_update.py took 8.5 s instead of 4.7.

Elsewhere (macOS, musl) these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import resource
import sys

M_MMAP_THRESHOLD = -3       # mallopt parameter (malloc.h)
MMAP_THRESHOLD = 1 << 20
ONEDNN_CACHE = "64"


@functools.cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_retained_memory() -> None:
    """Call before the first matmul (oneDNN reads its cache size once)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE)
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release_freed_memory() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def peak_rss_gb() -> float:
    """The process's largest resident set so far, in GB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024) / 1e9
