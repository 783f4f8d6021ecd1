"""A pool of environments stepped in parallel threads, with a per-call timeout.

One slot holds one environment. The interface passes only strings, seeds and plain
results in and out (nothing shared in memory), so the same interface can be backed by
processes or remote actors.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium


@dataclass
class Outcome:
    """What one reset/step call gave: a value, or the error that stopped it."""

    value: Any = None
    error: str | None = None       # "EnvError: ..." or "Timeout: ..."
    seconds: float = 0.0

    @property
    def timed_out(self) -> bool:
        return bool(self.error) and self.error.startswith("Timeout")


class EnvPool:
    def __init__(self, make_env: Callable[[], gymnasium.Env], workers: int = 4,
                 timeout_s: float = 60.0):
        self.make_env = make_env
        self.workers = max(1, workers)
        self.timeout_s = timeout_s
        self.envs: dict[int, gymnasium.Env] = {}
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="agentgym-env")

    def _env(self, slot: int) -> gymnasium.Env:
        if slot not in self.envs:
            self.envs[slot] = self.make_env()
        return self.envs[slot]

    def reset(self, seeds: dict[int, int]) -> dict[int, Outcome]:
        """Reset each slot's environment with its seed: {slot: (obs, info)}."""
        return self._run({slot: (lambda s=slot, seed=seed: self._env(s).reset(seed=seed))
                          for slot, seed in seeds.items()})

    def step(self, actions: dict[int, str]) -> dict[int, Outcome]:
        """Step each slot with its action: {slot: (obs, reward, terminated, truncated, info)}."""
        return self._run({slot: (lambda s=slot, a=action: self.envs[s].step(a))
                          for slot, action in actions.items()})

    def _run(self, calls: dict[int, Callable[[], Any]]) -> dict[int, Outcome]:
        started: dict[int, float] = {}

        def timed(slot: int, fn: Callable[[], Any]) -> Outcome:
            started[slot] = time.perf_counter()
            try:
                value = fn()
            except Exception as e:  # noqa: BLE001 - any environment failure ends that episode
                return Outcome(error=f"EnvError: {type(e).__name__}: {e}",
                               seconds=time.perf_counter() - started[slot])
            return Outcome(value, seconds=time.perf_counter() - started[slot])

        futures: dict[Future, int] = {self._executor.submit(timed, slot, fn): slot
                                      for slot, fn in calls.items()}
        results: dict[int, Outcome] = {}
        pending = set(futures)
        while pending:
            now = time.perf_counter()
            deadlines = [started[futures[f]] + self.timeout_s for f in pending if futures[f] in started]
            timeout = max(0.0, min(deadlines) - now) if deadlines else self.timeout_s
            done, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for f in done:
                results[futures[f]] = f.result()
            now = time.perf_counter()
            for f in [f for f in pending if futures[f] in started
                      and now - started[futures[f]] >= self.timeout_s]:
                slot = futures[f]
                results[slot] = Outcome(error=f"Timeout: no answer within {self.timeout_s:g} s",
                                        seconds=now - started[slot])
                pending.discard(f)
                self._abandon(slot)
        return results

    def _abandon(self, slot: int) -> None:
        """A stuck environment keeps its thread; give the slot a fresh env and fresh threads."""
        self.envs.pop(slot, None)
        self._executor.shutdown(wait=False, cancel_futures=False)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="agentgym-env")

    def close(self) -> None:
        for env in self.envs.values():
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self.envs.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
