"""The text-environment contract, and the wrapper every registered environment runs in.

An environment is a ``gymnasium.Env`` whose observations and actions are strings.
``reset`` and ``step`` return an ``info`` dict with at least the keys in
``REQUIRED_INFO`` (``admissible_actions`` where the environment has them).

``EpisodeGuard`` is added by ``agentgym.make`` (and by ``gymnasium.make`` on an
agentgym-registered id). It enforces the parts of the contract that are the same for
every environment, so environment authors do not each re-implement them:

- an action that is not a clean string (empty, too long, control characters,
  unencodable text) never reaches the environment: the step returns the current
  observation, reward 0 and ``action_valid=False``;
- after the episode ended, further steps change nothing and are invalid;
- ``max_episode_steps`` ends the episode with ``truncated=True``;
- what the environment returns is checked (``agentgym.env_values``): a non-string
  observation, a NaN/infinite/non-numeric reward or a ``SystemExit`` from inside it
  raises ``EnvValueError``, which ends that episode as an environment error.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import gymnasium
from gymnasium.utils import RecordConstructorArgs

from agentgym.env_values import call_env, checked_reset, checked_step

REQUIRED_INFO: dict[str, type | tuple[type, ...]] = {
    "task_id": str,
    "won": bool,
    "action_valid": bool,
    "anchor": str,
}
OPTIONAL_INFO: dict[str, type | tuple[type, ...]] = {
    "task": str,                 # the task text for the prompt (else the first observation)
    "task_type": str,            # for success by task type
    "admissible_actions": list,
    "tool_calls": int,
}
MAX_ACTION_CHARS = 2_000


def action_problem(action: Any, max_chars: int = MAX_ACTION_CHARS) -> str | None:
    """Why ``action`` cannot be sent to an environment, or None when it can."""
    if not isinstance(action, str):
        return f"action must be a string, got {type(action).__name__}"
    if not action.strip():
        return "empty action"
    if len(action) > max_chars:
        return f"action longer than {max_chars} characters"
    try:
        action.encode("utf-8")
    except UnicodeEncodeError:
        return "action is not valid UTF-8 text"
    for ch in action:
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs"):
            return f"action contains control character {ch!r}"
    return None


class EpisodeGuard(gymnasium.Wrapper, RecordConstructorArgs):
    """Bad actions, post-episode actions and the step limit, the same for every env."""

    def __init__(self, env: gymnasium.Env, max_episode_steps: int | None = None,
                 max_action_chars: int = MAX_ACTION_CHARS):
        RecordConstructorArgs.__init__(self, max_episode_steps=max_episode_steps,
                                       max_action_chars=max_action_chars)
        gymnasium.Wrapper.__init__(self, env)
        self.max_episode_steps = max_episode_steps
        self.max_action_chars = max_action_chars
        self.elapsed_steps = 0
        self._last: tuple[Any, dict] | None = None
        self._ended: tuple[bool, bool] | None = None  # (terminated, truncated) once over
        self._closed = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = checked_reset(call_env("reset", self.env.reset, seed=seed, options=options))
        self.elapsed_steps = 0
        self._ended = None
        self._last = (obs, info)
        return obs, info

    def _unchanged(self, reason: str, terminated: bool, truncated: bool):
        obs, info = self._last if self._last is not None else ("", {})
        info = dict(info, action_valid=False, invalid_reason=reason)
        return obs, 0.0, terminated, truncated, info

    def step(self, action: Any):
        if self._ended is not None:
            return self._unchanged("the episode has ended; call reset()", *self._ended)
        if self._last is None:
            return self._unchanged("call reset() before step()", False, False)
        problem = action_problem(action, self.max_action_chars)
        if problem is None:
            obs, reward, terminated, truncated, info = checked_step(
                call_env("step", self.env.step, action.strip()))
        else:
            obs, reward, terminated, truncated, info = self._unchanged(problem, False, False)
        self.elapsed_steps += 1
        if self.max_episode_steps is not None and self.elapsed_steps >= self.max_episode_steps:
            truncated = truncated or not terminated
        if terminated or truncated:
            self._ended = (bool(terminated), bool(truncated))
        self._last = (obs, info)
        return obs, reward, terminated, truncated, info

    def close(self):
        if not self._closed:
            self._closed = True
            self.env.close()
