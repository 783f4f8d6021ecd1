"""A pool of environments stepped in parallel, with a per-call timeout.

One slot holds one environment. The interface passes only strings, seeds and plain
results in and out (nothing shared in memory), so the same interface is backed by
threads (``backend="thread"``, the default: light environments, no start-up cost) or by
worker processes (``backend="process"``: heavy, CPU-bound environments such as ALFWorld,
which would serialize on the GIL in threads). ``backend="auto"`` reads the choice from
the environment class's ``metadata["agentgym.pool"]`` when ``make_env`` is an
:class:`EnvMaker`, else uses threads.

A call that outlives ``timeout_s`` ends only its own episode, frees its slot and never
blocks exit: threads run calls as abandonable daemon threads (``deadline.py``; calls
queued behind hung ones still start), processes kill the hung worker and rebuild the
other episodes it held.
"""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_connections
from typing import Any

import gymnasium

from agentgym.rollout import fork as forking
from agentgym.rollout.deadline import ERROR, OK, run_with_deadlines
from agentgym.rollout.fork import ForkJob, ForkMismatch, Trace


@dataclass
class Outcome:
    """What one reset/step call gave: a value, or the error that stopped it."""

    value: Any = None
    error: str | None = None       # "EnvError: ...", "Timeout: ..." or "ForkMismatch: ..."
    seconds: float = 0.0
    snapshot: bytes | None = None  # the state after the call, when snapshots are kept

    @property
    def timed_out(self) -> bool:
        return bool(self.error) and self.error.startswith("Timeout")

    @property
    def fork_mismatch(self) -> bool:
        return bool(self.error) and self.error.startswith("ForkMismatch")


def _failure(e: Exception, seconds: float) -> Outcome:
    if isinstance(e, ForkMismatch):
        return Outcome(error=f"ForkMismatch: {e}", seconds=seconds)
    return Outcome(error=f"EnvError: {type(e).__name__}: {e}", seconds=seconds)


def _call(get_env: Callable[[], gymnasium.Env], kind: str, arg: Any,
          keep_snapshot: bool) -> Outcome:
    """One reset / step / fork on an environment, where it lives."""
    start = time.perf_counter()
    try:
        env = get_env()
        if kind == "reset":
            value = env.reset(seed=arg)
        elif kind == "step":
            value = env.step(arg)
        elif kind == "restore":   # rebuild a slot's episode: reset, then its actions
            seed, actions = arg
            value = env.reset(seed=seed)[0]
            for action in actions:
                value = env.step(action)[0]
        else:
            value = forking.fork(env, arg)
        snap = forking.snapshot(env) if keep_snapshot else None
    except Exception as e:  # noqa: BLE001 - any environment failure ends that episode
        return _failure(e, time.perf_counter() - start)
    return Outcome(value, seconds=time.perf_counter() - start, snapshot=snap)


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
    """Threads by default; ``EnvPool(..., backend="process")`` gives a :class:`ProcessEnvPool`.

    The pool keeps each slot's :class:`~agentgym.rollout.fork.Trace` (seed, actions,
    observations and anchors since its reset), so ``fork`` can rebuild any state an
    episode passed through in another slot, in another worker too. With
    ``keep_snapshots`` on (an environment with snapshot()/restore()), the state after
    every call is captured as well and forks restore it instead of replaying.
    """


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
        self.traces: dict[int, Trace] = {}
        self.keep_snapshots = False

    def _env(self, slot: int, kind: str = "reset") -> gymnasium.Env:
        return _slot_env(self.envs, slot, kind, self.make_env)

    def reset(self, seeds: dict[int, int]) -> dict[int, Outcome]:
        """Reset each slot's environment with its seed: {slot: (obs, info)}."""
        results = self._calls("reset", seeds)
        for slot, out in results.items():
            self.traces.pop(slot, None)
            if not out.error:
                self.traces[slot] = Trace(seeds[slot])
                self.traces[slot].add(*out.value, out.snapshot)
        return results

    def step(self, actions: dict[int, str]) -> dict[int, Outcome]:
        """Step each slot with its action: {slot: (obs, reward, terminated, truncated, info)}."""
        results = self._calls("step", actions)
        for slot, out in results.items():
            trace = self.traces.get(slot)
            if trace is not None and not out.error:
                trace.actions.append(actions[slot])
                obs, _, _, _, info = out.value
                trace.add(obs, info, out.snapshot)
            elif trace is not None:
                del self.traces[slot]   # the state after a failed call is unknown
        return results

    def fork(self, requests: dict[int, tuple[int, int | None]], env_id: str = "") -> dict[int, Outcome]:
        """Make each ``dst`` slot a copy of slot ``src``'s episode as it was before action
        ``step`` (None: its current state): ``{dst: (src, step)}`` -> ``{dst: (obs, info)}``.

        The source may have moved on or been released. A replay that does not reproduce
        the record gives an Outcome whose error starts with ``ForkMismatch``.
        """
        jobs: dict[int, ForkJob] = {}
        prefixes: dict[int, Trace] = {}
        lost: dict[int, Outcome] = {}
        for dst, (src, step) in requests.items():
            trace = self.traces.get(src)
            step = len(trace.actions) if step is None and trace else step
            if trace is None or step > len(trace.actions):
                lost[dst] = Outcome(error=f"EnvError: slot {src} has no recorded state at "
                                    f"step {step} to fork from (its episode failed)")
                continue
            jobs[dst] = ForkJob.of(trace, step, env_id)
            prefixes[dst] = trace.prefix(step)
        results = self._calls("fork", jobs) | lost
        for dst, out in results.items():
            self.traces.pop(dst, None)
            if not out.error:
                self.traces[dst] = prefixes[dst]
        return results

    def release(self, slots: list[int]) -> None:
        """Close these slots' environments (an episode is over); their traces stay, so
        they can still be forked from. A later reset or fork gives the slot a fresh env."""
        for slot in slots:
            env = self.envs.pop(slot, None)
            if env is not None:
                try:
                    env.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass

    def fork_mode(self) -> str:
        """``snapshot`` or ``replay``: how this pool's environments fork."""
        return fork_mode_of(self.make_env)

    def _calls(self, kind: str, calls: dict[int, Any]) -> dict[int, Outcome]:
        keep = self.keep_snapshots
        return self._run({slot: (lambda s=slot, a=arg: _call(lambda: self._env(s, kind), kind, a, keep))
                          for slot, arg in calls.items()})

    def _run(self, calls: dict[int, Callable[[], Outcome]]) -> dict[int, Outcome]:
        results: dict[int, Outcome] = {}
        for slot, (status, value, seconds) in run_with_deadlines(
                calls, self.workers, self.timeout_s).items():
            if status == OK:         # an Outcome (environment errors are caught in _call)
                results[slot] = value
            elif status == ERROR:   # any environment failure ends that episode
                results[slot] = Outcome(error=f"EnvError: {type(value).__name__}: {value}",
                                        seconds=seconds)
            else:                   # the stuck env stays with its abandoned thread
                self.envs.pop(slot, None)
                results[slot] = Outcome(error=f"Timeout: no answer within {self.timeout_s:g} s",
                                        seconds=seconds)
        return results

    def close(self) -> None:
        for env in self.envs.values():
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self.envs.clear()


# ------------------------------------------------------------------------- processes

def fork_mode_of(make_env: Callable[[], gymnasium.Env]) -> str:
    """How environments from ``make_env`` fork, read from the class when it is known."""
    if isinstance(make_env, EnvMaker):
        from gymnasium.envs.registration import load_env_creator

        spec = gymnasium.registry.get(make_env.env_id)
        entry = spec.entry_point if spec is not None else None
        creator = load_env_creator(entry) if isinstance(entry, str) else entry
        if isinstance(creator, type):
            return forking.SNAPSHOT if callable(getattr(creator, "snapshot", None)) and \
                callable(getattr(creator, "restore", None)) else forking.REPLAY
    env = make_env()
    try:
        return forking.fork_mode(env)
    finally:
        env.close()


def _slot_env(envs: dict, slot: int, kind: str, make_env) -> gymnasium.Env:
    """The slot's environment; reset and fork build one, a step needs one already."""
    if slot not in envs:
        if kind == "step":
            raise RuntimeError("this slot's environment was lost; reset it first")
        envs[slot] = make_env()
    return envs[slot]


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
        kind, calls, keep_snapshots = message
        if kind == "close":
            break
        if kind == "release":
            for slot, _ in calls:
                env = envs.pop(slot, None)
                try:
                    env is not None and env.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            continue
        for slot, arg in calls:
            outcome = _call(lambda s=slot: _slot_env(envs, s, kind, make_env), kind, arg,
                            keep_snapshots)
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
    than ``timeout_s`` kills its worker (and a worker may die): that call gives a Timeout
    (or an EnvError) and ends only its own episode. The other slots of that worker keep
    theirs: the pool records each live episode's seed and actions, replays them in a
    fresh worker (environments are deterministic by contract; a replay that does not
    reach the recorded observation is an EnvError for that slot), and then runs their
    calls of the batch.

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
        self.traces: dict[int, Trace] = {}
        self.keep_snapshots = False
        # slot -> (seed, actions so far, last observation): what a restart replays
        self._episodes: dict[int, tuple[int, list[str], Any]] = {}

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

    def _calls(self, kind: str, calls: dict[int, Any]) -> dict[int, Outcome]:
        return self._dispatch(kind, calls)

    def release(self, slots: list[int]) -> None:
        by_worker: dict[int, list[tuple[int, None]]] = {}
        for slot in slots:
            by_worker.setdefault(slot % self.workers, []).append((slot, None))
        for index, batch in by_worker.items():
            worker = self._workers.get(index)
            if worker is not None and worker.ready:
                try:
                    worker.conn.send(("release", batch, False))
                except (BrokenPipeError, OSError):
                    pass


    def _record(self, kind: str, slot: int, arg: Any, outcome: Outcome) -> None:
        """Keep what a restart needs to rebuild each live episode, as answers arrive."""
        if kind == "reset" and outcome.error is None:
            self._episodes[slot] = (arg, [], outcome.value[0])
        elif kind == "step" and slot in self._episodes and outcome.error is None \
                and not (outcome.value[2] or outcome.value[3]):
            seed, actions, _ = self._episodes[slot]
            self._episodes[slot] = (seed, actions + [arg], outcome.value[0])
        elif kind == "fork" and outcome.error is None:   # a fork is rebuilt from its prefix
            self._episodes[slot] = (arg.seed, list(arg.actions), outcome.value[0])
        elif kind != "restore":      # failed or over: nothing to rebuild
            self._episodes.pop(slot, None)

    def _lost_worker(self, index: int, culprit: int, culprit_error: Outcome, waiting: list[int],
                     kind: str, calls: dict[int, Any], results: dict[int, Outcome]) -> None:
        """Worker ``index`` was killed (a call hung) or died: ``culprit`` gets its error, the
        episodes of every other slot that lived there are rebuilt in a fresh worker by
        replaying their seed and actions (environments are deterministic by contract), and
        ``waiting`` slots' calls of this batch run again."""
        results[culprit] = culprit_error
        self._episodes.pop(culprit, None)
        self._kill_worker(index)
        survivors = sorted(s for s in self._episodes if s % self.workers == index)
        replayed = self._dispatch("restore", {s: self._episodes[s][:2] for s in survivors},
                                  recover=False) if survivors else {}
        for slot in survivors:
            outcome = replayed[slot]
            if outcome.error is None and outcome.value != self._episodes[slot][2]:
                outcome = Outcome(error="EnvError: this slot's environment could not be rebuilt "
                                        "after its worker restarted (replaying its actions gave "
                                        "another observation: is the environment deterministic?)")
            if outcome.error is not None:
                self._episodes.pop(slot)
                if slot in waiting:
                    results[slot] = Outcome(error=f"{outcome.error} (worker restarted after "
                                                  "another slot failed)")
        again = {s: calls[s] for s in waiting if s not in results}
        if again:
            results.update(self._dispatch(kind, again))

    def _dispatch(self, kind: str, calls: dict[int, Any], recover: bool = True) -> dict[int, Outcome]:
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
                worker.conn.send((kind, batch, self.keep_snapshots))
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
                    slots = pending.pop(index)
                    died = Outcome(error="EnvError: worker process died")
                    if recover:
                        self._lost_worker(index, slots[0], died, slots[1:], kind, calls, results)
                    else:
                        self._fail(index, slots, results, died.error)
                    continue
                results[slot] = outcome
                self._record(kind, slot, calls[slot], outcome)
                pending[index].remove(slot)
                progress[index] = time.perf_counter()
                if not pending[index]:
                    del pending[index]
            now = time.perf_counter()
            for index in [i for i in pending if now - progress[i] >= self.timeout_s]:
                slots = pending.pop(index)
                hung = Outcome(error=f"Timeout: no answer within {self.timeout_s:g} s",
                               seconds=now - progress[index])
                if recover:
                    self._lost_worker(index, slots[0], hung, slots[1:], kind, calls, results)
                else:
                    results[slots[0]] = hung
                    self._fail(index, slots[1:], results,
                               "EnvError: worker restarted after another slot timed out")
        if kind != "restore":
            for slot, outcome in results.items():
                if outcome.error is not None:
                    self._episodes.pop(slot, None)
        return results

    def _kill_worker(self, index: int) -> None:
        worker = self._workers.pop(index, None)
        if worker is not None:
            worker.kill()

    def _fail(self, index: int, slots: list[int], results: dict[int, Outcome], error: str) -> None:
        self._kill_worker(index)
        for slot in slots:
            results[slot] = Outcome(error=error)

    def close(self) -> None:
        for worker in self._workers.values():
            try:
                worker.conn.send(("close", [], False))
            except (BrokenPipeError, OSError):
                pass
        for worker in self._workers.values():
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.kill()
            else:
                worker.conn.close()
        self._workers.clear()
