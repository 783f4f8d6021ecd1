"""Run calls on daemon threads, at most ``workers`` at a time, each with its own deadline.

A call that outlives ``timeout_s`` is abandoned: its result is "timeout", its thread is
no longer counted against ``workers`` (so the calls queued behind it start, however
many hang), and, being a daemon thread that no executor joins, it never keeps the
process from exiting. A thread cannot be killed; what it holds (a stuck environment)
is dropped by the caller and the thread ends whenever the call returns, if ever.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

OK, ERROR, TIMEOUT = "ok", "error", "timeout"


def run_with_deadlines(calls: dict[int, Callable[[], Any]], workers: int,
                       timeout_s: float) -> dict[int, tuple[str, Any, float]]:
    """{key: (OK, value, seconds) | (ERROR, exception, seconds) | (TIMEOUT, None, seconds)}."""
    results: dict[int, tuple[str, Any, float]] = {}
    finished: queue.SimpleQueue = queue.SimpleQueue()   # this run's only: late answers vanish
    waiting = deque(calls.items())
    running: dict[int, float] = {}                      # key -> when its call started

    def launch(key: int, fn: Callable[[], Any]) -> None:
        def call() -> None:
            try:
                answer = (OK, fn())
            except Exception as exc:  # noqa: BLE001 - the caller decides what it means
                answer = (ERROR, exc)
            finished.put((key, *answer, time.perf_counter()))

        running[key] = time.perf_counter()
        threading.Thread(target=call, name=f"agentgym-env-{key}", daemon=True).start()

    while waiting or running:
        while waiting and len(running) < max(1, workers):
            launch(*waiting.popleft())
        deadline = min(running.values()) + timeout_s
        try:
            key, status, value, ended = finished.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            now = time.perf_counter()
            for key, started in list(running.items()):
                if now - started >= timeout_s:
                    del running[key]
                    results[key] = (TIMEOUT, None, now - started)
            continue
        if key in running:                              # else it already timed out
            results[key] = (status, value, ended - running.pop(key))
    return results
