"""A pool of environments stepped in parallel, with a per-call timeout.

One slot holds one environment. The interface passes only strings, seeds and plain
results in and out (nothing shared in memory), so the same interface is backed by
threads (``backend="thread"``, the default: light environments, no start-up cost) or by
worker processes (``backend="process"``: heavy, CPU-bound environments such as ALFWorld,
which would serialize on the GIL in threads). ``backend="auto"`` reads the choice from
the environment class's ``metadata["agentgym.pool"]`` when ``make_env`` is an
:class:`EnvMaker`, else uses threads.
"""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_connections
from typing import Any

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


BACKENDS = ("thread", "process", "auto")


@dataclass(frozen=True)
class EnvMaker:
    """A picklable ``make_env``: ``agentgym.make(env_id, max_episode_steps=..., **kwargs)``.

    It carries the registration too (entry point, defaults, step limit), so an id that
    was registered at run time (not on import of agentgym) also exists in a worker
    process started with ``spawn``.
    """

    env_id: str
    kwargs: tuple = ()              # (key, value) pairs, so the maker stays hashable
    max_episode_steps: int | None = None
    registration: tuple | None = None   # (entry_point, default kwargs pairs, step limit)
    imports: tuple = ()                 # modules imported first (env.import), in every process

    @classmethod
    def of(cls, env_id: str, kwargs: dict | None = None,
           max_episode_steps: int | None = None, imports=()) -> EnvMaker:
        from agentgym.registry import _registered, import_modules, resolve_id

        import_modules(imports)
        bare = resolve_id(env_id)
        registration = None
        if bare in _registered and bare in gymnasium.registry:
            info = _registered[bare]
            registration = (gymnasium.registry[bare].entry_point,
                            tuple(sorted(info.kwargs.items())), info.max_episode_steps)
        return cls(env_id, tuple(sorted((kwargs or {}).items())), max_episode_steps,
                   registration, tuple(imports))

    def __call__(self) -> gymnasium.Env:
        import agentgym
        from agentgym.registry import import_modules, resolve_id

        import_modules(self.imports)
        env_id = resolve_id(self.env_id)  # "module:Name-v0" imports the module
        if env_id not in gymnasium.registry and self.registration is not None:
            entry_point, defaults, steps = self.registration
            agentgym.register(env_id, entry_point=entry_point, kwargs=dict(defaults),
                              max_episode_steps=steps)
        return agentgym.make(env_id, max_episode_steps=self.max_episode_steps,
                             **dict(self.kwargs))

    def preferred_backend(self) -> str:
        """``metadata["agentgym.pool"]`` of the registered class ("thread" if unset)."""
        from gymnasium.envs.registration import load_env_creator

        spec = gymnasium.registry.get(self.env_id.rpartition(":")[2])
        if spec is None:
            return "thread"
        entry = spec.entry_point
        creator = load_env_creator(entry) if isinstance(entry, str) else entry
        backend = (getattr(creator, "metadata", None) or {}).get("agentgym.pool", "thread")
        return backend if backend in ("thread", "process") else "thread"


def resolve_backend(make_env: Callable[[], gymnasium.Env], backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"env pool backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return make_env.preferred_backend() if isinstance(make_env, EnvMaker) else "thread"
    return backend


class EnvPool:
    """Threads by default; ``EnvPool(..., backend="process")`` gives a :class:`ProcessEnvPool`."""

    def __new__(cls, make_env=None, workers: int = 4, timeout_s: float = 60.0,
                backend: str = "thread"):
        if cls is EnvPool and resolve_backend(make_env, backend) == "process":
            return super().__new__(ProcessEnvPool)
        return super().__new__(cls)

    def __init__(self, make_env: Callable[[], gymnasium.Env], workers: int = 4,
                 timeout_s: float = 60.0, backend: str = "thread"):
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


# ------------------------------------------------------------------------- processes

def _worker_main(conn, make_env) -> None:
    """A worker process: holds the environments of its slots, runs calls in order and
    answers each one as soon as it is done."""
    envs: dict[int, gymnasium.Env] = {}
    conn.send("ready")  # start-up (imports) does not count against the first call's timeout
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            break
        kind, calls = message
        if kind == "close":
            break
        for slot, arg in calls:
            start = time.perf_counter()
            try:
                if kind == "reset":
                    if slot not in envs:
                        envs[slot] = make_env()
                    value = envs[slot].reset(seed=arg)
                else:
                    if slot not in envs:
                        raise RuntimeError("this slot's environment was lost (its worker "
                                           "restarted); reset it first")
                    value = envs[slot].step(arg)
                outcome = Outcome(value, seconds=time.perf_counter() - start)
            except Exception as e:  # noqa: BLE001 - any environment failure ends that episode
                outcome = Outcome(error=f"EnvError: {type(e).__name__}: {e}",
                                  seconds=time.perf_counter() - start)
            try:
                conn.send((slot, outcome))
            except Exception as e:  # noqa: BLE001 - an unpicklable result
                conn.send((slot, Outcome(error=f"EnvError: result not picklable: {e}",
                                         seconds=outcome.seconds)))
    for env in envs.values():
        try:
            env.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
    conn.close()


class _Worker:
    def __init__(self, context, make_env):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, make_env), daemon=True,
                                       name="agentgym-env-worker")
        self.process.start()
        child.close()
        self.ready = False

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class ProcessEnvPool(EnvPool):
    """The same interface, each environment living in one of ``workers`` processes.

    Slot ``s`` lives in worker ``s % workers`` for its whole life, so a worker steps its
    slots one after another and the workers run in parallel. A call that takes longer
    than ``timeout_s`` kills its worker: that call gives a Timeout, the other slots of
    that worker lose their environment (their calls in the same batch give an EnvError,
    and a later reset gives them a fresh one in a fresh worker).

    ``make_env`` should be picklable (an :class:`EnvMaker`, a class, a module-level
    function); workers then start with ``spawn``. Otherwise (a lambda) they start with
    ``fork``, which is fine as long as the parent has no threads in flight.
    """

    def __init__(self, make_env: Callable[[], gymnasium.Env], workers: int = 4,
                 timeout_s: float = 60.0, backend: str = "process"):
        self.make_env = make_env
        self.workers = max(1, workers)
        self.timeout_s = timeout_s
        self.envs: dict[int, gymnasium.Env] = {}   # always empty: envs live in the workers
        try:
            pickle.dumps(make_env)
            method = "spawn"
        except Exception:  # noqa: BLE001 - lambdas, closures
            method = "fork"
        self._context = multiprocessing.get_context(method)
        self._workers: dict[int, _Worker] = {}

    STARTUP_TIMEOUT_S = 300.0

    def _start_workers(self, indices) -> dict[int, str]:
        """Start the missing workers (in parallel) and wait until each is ready.

        Returns {worker index: error} for workers that did not come up.
        """
        for index in indices:
            worker = self._workers.get(index)
            if worker is None or not worker.process.is_alive():
                if worker is not None:
                    worker.kill()
                self._workers[index] = _Worker(self._context, self.make_env)
        waiting = {self._workers[i].conn: i for i in indices if not self._workers[i].ready}
        deadline = time.perf_counter() + self.STARTUP_TIMEOUT_S
        failed: dict[int, str] = {}
        while waiting:
            ready = wait_connections(list(waiting), timeout=max(0.0, deadline - time.perf_counter()))
            if not ready:
                break
            for conn in ready:
                index = waiting.pop(conn)
                try:
                    conn.recv()
                    self._workers[index].ready = True
                except (EOFError, OSError):
                    failed[index] = "EnvError: worker process failed to start"
        for index in waiting.values():
            failed[index] = "EnvError: worker process did not start in time"
        for index in failed:
            self._workers.pop(index).kill()
        return failed

    def reset(self, seeds: dict[int, int]) -> dict[int, Outcome]:
        return self._dispatch("reset", seeds)

    def step(self, actions: dict[int, str]) -> dict[int, Outcome]:
        return self._dispatch("step", actions)

    def _dispatch(self, kind: str, calls: dict[int, Any]) -> dict[int, Outcome]:
        by_worker: dict[int, list[tuple[int, Any]]] = {}
        for slot, arg in calls.items():
            by_worker.setdefault(slot % self.workers, []).append((slot, arg))
        pending: dict[int, list[int]] = {}
        progress: dict[int, float] = {}
        results: dict[int, Outcome] = {}
        failed = self._start_workers(list(by_worker))
        for index, batch in by_worker.items():
            if index in failed:
                for slot, _ in batch:
                    results[slot] = Outcome(error=failed[index])
                continue
            worker = self._workers[index]
            try:
                worker.conn.send((kind, batch))
            except (BrokenPipeError, OSError) as e:
                for slot, _ in batch:
                    results[slot] = Outcome(error=f"EnvError: worker unavailable: {e}")
                continue
            pending[index] = [slot for slot, _ in batch]
            progress[index] = time.perf_counter()
        while pending:
            conns = {self._workers[i].conn: i for i in pending}
            deadline = min(progress[i] for i in pending) + self.timeout_s
            ready = wait_connections(list(conns), timeout=max(0.0, deadline - time.perf_counter()))
            for conn in ready:
                index = conns[conn]
                try:
                    slot, outcome = conn.recv()
                except (EOFError, OSError):
                    self._fail(index, pending.pop(index), results, "EnvError: worker process died")
                    continue
                results[slot] = outcome
                pending[index].remove(slot)
                progress[index] = time.perf_counter()
                if not pending[index]:
                    del pending[index]
            now = time.perf_counter()
            for index in [i for i in pending if now - progress[i] >= self.timeout_s]:
                slots = pending.pop(index)
                results[slots[0]] = Outcome(error=f"Timeout: no answer within {self.timeout_s:g} s",
                                            seconds=now - progress[index])
                self._fail(index, slots[1:], results,
                           "EnvError: worker restarted after another slot timed out")
        return results

    def _fail(self, index: int, slots: list[int], results: dict[int, Outcome], error: str) -> None:
        worker = self._workers.pop(index, None)
        if worker is not None:
            worker.kill()
        for slot in slots:
            results[slot] = Outcome(error=error)

    def close(self) -> None:
        for worker in self._workers.values():
            try:
                worker.conn.send(("close", []))
            except (BrokenPipeError, OSError):
                pass
        for worker in self._workers.values():
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.kill()
            else:
                worker.conn.close()
        self._workers.clear()
