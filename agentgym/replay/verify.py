"""Re-play verification: do the stored actions, played again from the same seed in a fresh
environment, give the stored observations and rewards? (A determinism check: tree
rollouts and branching rebuild mid-episode states exactly this way.)"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import agentgym
from agentgym.episode import FAILURE, MAX_STEPS, SUCCESS, Episode
from agentgym.replay.run import Run

REWARD_TOLERANCE = 1e-6
_ENDED_BY_ENV = (SUCCESS, FAILURE, MAX_STEPS)  # terminations the environment decided


@dataclass
class Difference:
    step: int            # the stored step whose outcome differs (-1: the reset)
    field: str           # observation, anchor, reward, done, won, error
    stored: Any
    replayed: Any


@dataclass
class Verification:
    episode_id: str
    steps_checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    note: str | None = None  # why the re-play stopped before the end, if it did

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_episode(episode: Episode, env_kwargs: dict[str, Any],
                   max_episode_steps: int | None = None) -> Verification:
    """Reset a new ``episode.env_id`` environment with the episode's seed, send each stored
    action (an unparsed reply is sent as "", as the rollout did) and compare."""
    result = Verification(episode.episode_id)
    env = agentgym.make(episode.env_id, max_episode_steps=max_episode_steps, **env_kwargs)
    try:
        _replay(env, episode, result)
    finally:
        env.close()
    return result


def _replay(env: Any, ep: Episode, result: Verification) -> None:
    diff = result.differences
    try:
        obs, info = env.reset(seed=ep.seed)
    except Exception as exc:  # noqa: BLE001 - the environment's own failure is the finding
        diff.append(Difference(-1, "error", None, f"{type(exc).__name__}: {exc}"))
        return
    _compare_state(ep, 0, obs, info, diff, before_step=-1)
    for k, step in enumerate(ep.steps):
        if step.error:  # the stored step raised or timed out: nothing to compare after it
            result.note = f"stopped at step {step.index}: the stored step failed ({step.error})"
            return
        try:
            obs, reward, terminated, truncated, info = env.step(step.action or "")
        except Exception as exc:  # noqa: BLE001
            diff.append(Difference(step.index, "error", None, f"{type(exc).__name__}: {exc}"))
            return
        result.steps_checked += 1
        if not math.isclose(float(reward), step.reward or 0.0, rel_tol=0.0,
                            abs_tol=REWARD_TOLERANCE):
            diff.append(Difference(step.index, "reward", step.reward, float(reward)))
        last = k == len(ep.steps) - 1
        done = bool(terminated or truncated)
        if done and not last:
            diff.append(Difference(step.index, "done", False, True))
            result.note = f"the re-played episode ended after step {step.index}"
            return
        if last:
            if ep.termination in _ENDED_BY_ENV and not done:
                diff.append(Difference(step.index, "done", True, False))
            if obs != ep.final_observation:
                diff.append(Difference(step.index, "observation", ep.final_observation, obs))
            if done and bool(info.get("won", False)) != ep.won:
                diff.append(Difference(step.index, "won", ep.won, bool(info.get("won"))))
        else:
            _compare_state(ep, k + 1, obs, info, diff, before_step=step.index)


def _compare_state(ep: Episode, k: int, obs: str, info: dict, diff: list[Difference],
                   before_step: int) -> None:
    """The observation (and anchor) after ``before_step`` against stored step ``k``'s."""
    if k >= len(ep.steps):  # an episode with no steps
        if obs != ep.final_observation:
            diff.append(Difference(before_step, "observation", ep.final_observation, obs))
        return
    stored = ep.steps[k]
    if obs != stored.observation:
        diff.append(Difference(before_step, "observation", stored.observation, obs))
    anchor = str(info.get("anchor", obs))
    if anchor != stored.anchor:
        diff.append(Difference(before_step, "anchor", stored.anchor, anchor))


def choose_episodes(run: Run, filters: dict[str, Any], episode_id: str | None,
                    sample: int, seed: int = 0) -> list[str]:
    """The episode ids to verify: the one asked for, or a seeded sample of the matches."""
    if episode_id is not None:
        return [episode_id]
    ids = [s.episode_id for s in run.store.query(limit=None, order="episode", **filters)]
    if sample >= len(ids):
        return ids
    return sorted(random.Random(seed).sample(ids, sample), key=ids.index)


def verify_run(run: Run, episode_ids: list[str], on_result=None) -> list[Verification]:
    from agentgym.registry import import_modules

    env = run.config.get("env") or {}
    import_modules(env.get("import") or env.get("imports") or [])  # the run's own env.import
    results = []
    for episode_id in episode_ids:
        ep = run.store.get_episode(episode_id)
        kwargs, max_steps = run.env_spec(ep.env_id, ep.split)
        result = verify_episode(ep, kwargs, max_steps)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
