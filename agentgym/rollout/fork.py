"""Forking an environment: rebuilding, in another slot, the state one episode had at step k.

Two ways, chosen per environment class:

- **replay** (always works, by the contract): reset the child's environment with the
  episode's seed and play the same actions again; every replayed observation and anchor
  must equal the recorded one, else :class:`ForkMismatch` (the environment is not
  deterministic given its seed and actions, and the child cannot be trusted).
- **snapshot** (fast path): the environment class offers ``snapshot() -> bytes`` and
  ``restore(bytes)``; the state is captured after each step of an episode that may be
  forked and restored into the child. The wrappers agentgym adds (the step limit of
  :class:`~agentgym.contract.EpisodeGuard`) are captured with it.

This module runs where the environments live (a thread, or a worker process): it gets
and returns only plain data.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import gymnasium

from agentgym.contract import EpisodeGuard

REPLAY, SNAPSHOT = "replay", "snapshot"


class ForkMismatch(RuntimeError):
    """Replaying an episode's actions from its seed did not give the recorded state."""


@dataclass
class Trace:
    """What a slot's episode did since its reset: enough to rebuild any of its states.

    ``observations[k]`` / ``anchors[k]`` are what the environment showed before action k
    (index 0: after reset); ``infos[k]`` the info dict that came with it; ``snapshots[k]``
    the state there, when snapshots are kept.
    """

    seed: int
    actions: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)
    infos: list[dict] = field(default_factory=list)
    snapshots: list[bytes | None] = field(default_factory=list)

    def add(self, observation: str, info: dict, snapshot: bytes | None) -> None:
        self.observations.append(observation)
        self.anchors.append(str(info.get("anchor", observation)))
        self.infos.append(info)
        self.snapshots.append(snapshot)

    def prefix(self, step: int) -> Trace:
        """The trace of a child forked at ``step`` (before action ``step``)."""
        return Trace(self.seed, self.actions[:step], self.observations[:step + 1],
                     self.anchors[:step + 1], self.infos[:step + 1], self.snapshots[:step + 1])


@dataclass
class ForkJob:
    """Everything a slot needs to become the fork of an episode at ``step``."""

    env_id: str
    seed: int
    actions: list[str]               # the first ``step`` actions of the source episode
    observations: list[str]          # recorded, before each action and at the fork point
    anchors: list[str]
    info: dict                       # the info that came with the fork point's observation
    snapshot: bytes | None = None    # the state at the fork point, when captured

    @classmethod
    def of(cls, trace: Trace, step: int, env_id: str = "") -> ForkJob:
        return cls(env_id, trace.seed, trace.actions[:step], trace.observations[:step + 1],
                   trace.anchors[:step + 1], trace.infos[step], trace.snapshots[step])


def fork_mode(env: gymnasium.Env) -> str:
    """``snapshot`` when the environment class offers snapshot()/restore(), else ``replay``."""
    inner = env.unwrapped
    return SNAPSHOT if callable(getattr(inner, "snapshot", None)) and \
        callable(getattr(inner, "restore", None)) else REPLAY


def _guards(env: gymnasium.Env) -> list[EpisodeGuard]:
    out = []
    while isinstance(env, gymnasium.Wrapper):
        if isinstance(env, EpisodeGuard):
            out.append(env)
        env = env.env
    return out


def snapshot(env: gymnasium.Env) -> bytes:
    """The environment's state and that of its agentgym wrappers, as bytes."""
    guards = [(g.elapsed_steps, g._last, g._ended) for g in _guards(env)]
    return pickle.dumps((env.unwrapped.snapshot(), guards))


def restore(env: gymnasium.Env, blob: bytes) -> None:
    state, guards = pickle.loads(blob)
    env.unwrapped.restore(state)
    for g, (elapsed, last, ended) in zip(_guards(env), guards):
        g.elapsed_steps, g._last, g._ended = elapsed, last, ended


def replay(env: gymnasium.Env, job: ForkJob) -> tuple[str, dict]:
    """Reset with the seed, play the actions, check every state against the record."""
    name = job.env_id or type(env.unwrapped).__name__
    obs, info = env.reset(seed=job.seed)
    _check(name, 0, job, obs, info)
    for k, action in enumerate(job.actions, start=1):
        obs, _, _, _, info = env.step(action)
        _check(name, k, job, obs, info)
    return obs, info


def _check(name: str, k: int, job: ForkJob, obs: str, info: dict) -> None:
    if obs != job.observations[k]:
        raise ForkMismatch(f"{name} step {k}: replaying the actions from seed {job.seed} gave "
                           f"observation {obs[:60]!r}, the episode had {job.observations[k][:60]!r}")
    anchor = str(info.get("anchor", obs))
    if anchor != job.anchors[k]:
        raise ForkMismatch(f"{name} step {k}: replaying the actions from seed {job.seed} gave "
                           f"anchor {anchor[:60]!r}, the episode had {job.anchors[k][:60]!r}")


def fork(env: gymnasium.Env, job: ForkJob) -> tuple[str, dict]:
    """Bring ``env`` to the job's state: restore the snapshot if there is one, else replay.

    Returns the observation and info at the fork point (as recorded).
    """
    if job.snapshot is not None:
        restore(env, job.snapshot)
        return job.observations[-1], job.info
    replay(env, job)
    return job.observations[-1], job.info


def check_fork(make_env, *, seed: int = 0, steps: int = 6, rng_seed: int = 0):
    """``agentgym check``: play a few random steps, fork at the middle into fresh
    environments (by replay, and by snapshot where offered), continue both with the same
    actions and compare every observation, reward, ending, anchor and admissible list."""
    import random

    from agentgym.checker import CheckResult

    name = "forks reproduce the state"
    rng = random.Random(rng_seed)
    env = make_env()
    try:
        mode = fork_mode(env)
        obs, info = env.reset(seed=seed)
        trace, outcomes = Trace(seed), []
        trace.add(obs, info, snapshot(env) if mode == SNAPSHOT else None)
        for _ in range(steps):
            action = rng.choice(sorted(info.get("admissible_actions") or ["look"]))
            obs, reward, terminated, truncated, info = env.step(action)
            trace.actions.append(action)
            trace.add(obs, info, snapshot(env) if mode == SNAPSHOT else None)
            outcomes.append(_outcome(obs, reward, terminated, truncated, info))
            if terminated or truncated:
                break
    except Exception as e:  # noqa: BLE001 - an environment raising is the finding
        return CheckResult(name, False, f"raised {type(e).__name__}: {e}")
    finally:
        env.close()
    k = len(trace.actions) // 2
    ways = [REPLAY] + ([SNAPSHOT] if mode == SNAPSHOT else [])
    for way in ways:
        job = ForkJob.of(trace, k)
        if way == REPLAY:
            job.snapshot = None
        child = make_env()
        try:
            fork(child, job)
            for t, action in enumerate(trace.actions[k:], start=k):
                if _outcome(*child.step(action)) != outcomes[t]:
                    return CheckResult(name, False, f"a {way} fork at step {k} diverged at step "
                                       f"{t + 1}: the environment does not fork deterministically")
        except ForkMismatch as e:
            return CheckResult(name, False, str(e))
        except Exception as e:  # noqa: BLE001
            return CheckResult(name, False, f"{way} fork raised {type(e).__name__}: {e}")
        finally:
            child.close()
    both = "replay and snapshot forks agree" if mode == SNAPSHOT else "replay forks reproduce"
    return CheckResult(name, True, f"forks by {mode}; {both} from step {k} over "
                       f"{len(trace.actions) - k} steps")


def _outcome(obs, reward, terminated, truncated, info) -> tuple:
    return (obs, float(reward), bool(terminated), bool(truncated), str(info.get("anchor")),
            tuple(info.get("admissible_actions") or ()))
