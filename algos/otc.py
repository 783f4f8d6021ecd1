"""OTC (optimal tool calls): a tool-efficiency reward that multiplies correctness.

    reward = alpha * r_tool(m) * correctness        (a product: never added)

with m the tool calls an answer used and c the tool-call budget.

- OTC-PPO (no groups):  r_tool = cos(m * pi / (2m + c)).
- OTC-GRPO: n is the fewest tool calls among correct answers to this question, kept
  as a running minimum across training and updated with the group *before* the group
  is scored. f(m, n) = 0 if m = n = 0; m if n = 0; else 2nm / (m + n), and
  r_tool = 1 if f = n = 0; cos(m * pi / (2m + c)) if n = 0; else sin(f * pi / (2n)).
  A question never answered correctly has no n yet: its answers are all incorrect, so
  their reward is 0 whatever r_tool is (the n = 0 branch is used).

Pure numpy functions plus ``OTCState`` (the running minima, saved with checkpoints)
and metric helpers (tool calls per episode, tool productivity, accuracy).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

__all__ = ["otc_ppo_tool_reward", "otc_grpo_tool_reward", "otc_ppo_rewards",
           "otc_grpo_rewards", "OTCState", "tool_use_metrics", "count_tool_calls",
           "episode_tool_calls", "otc_episode_rewards", "otc_step_rewards"]


def _calls(m, name: str = "tool calls") -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if np.any(m < 0) or not np.all(np.isfinite(m)):
        raise ValueError(f"{name} must be finite and >= 0")
    return m


def otc_ppo_tool_reward(m, c: float) -> np.ndarray:
    """r_tool = cos(m * pi / (2m + c)); 1 at m = 0, falling to cos(pi/2 * m/(m + c/2))."""
    m = _calls(m)
    if c < 0:
        raise ValueError(f"c (the tool-call budget) must be >= 0, got {c}")
    denom = 2 * m + c
    angle = np.divide(m * np.pi, denom, out=np.zeros_like(m), where=denom > 0)
    return np.cos(angle)


def otc_grpo_tool_reward(m, n, c: float) -> np.ndarray:
    """r_tool(m, n) of OTC-GRPO, elementwise (n: the question's fewest correct calls)."""
    m, n = np.broadcast_arrays(_calls(m), _calls(n, "n"))
    f = np.where(n == 0, m, np.divide(2 * n * m, m + n, out=np.zeros_like(m), where=(m + n) > 0))
    with_n = np.sin(np.divide(f * np.pi, 2 * n, out=np.zeros_like(m), where=n > 0))
    return np.where(n > 0, with_n, otc_ppo_tool_reward(m, c))   # n = 0: 1 at m = 0, else cos


def _correctness(correct, shape) -> np.ndarray:
    r = np.asarray(correct, dtype=np.float64)
    if r.shape != shape:
        raise ValueError(f"correctness must have one value per answer: {r.shape} vs {shape}")
    return r


def otc_ppo_rewards(tool_calls, correct, c: float, alpha: float = 1.0) -> np.ndarray:
    """alpha * cos(m pi / (2m + c)) * correctness, per episode."""
    m = _calls(tool_calls)
    return alpha * otc_ppo_tool_reward(m, c) * _correctness(correct, m.shape)


class OTCState:
    """Per question: the fewest tool calls any correct answer has used so far."""

    def __init__(self, min_calls: dict[str, int] | None = None):
        self.min_calls: dict[str, int] = dict(min_calls or {})

    def update(self, question_ids: Sequence[str], tool_calls, correct,
               threshold: float = 1.0) -> None:
        """Fold a batch in: answers with correctness >= ``threshold`` lower their minimum."""
        m = _calls(tool_calls)
        ok = _correctness(correct, m.shape) >= threshold
        for qid, calls, good in zip(question_ids, m, ok):
            if good:
                key = str(qid)
                self.min_calls[key] = min(int(calls), self.min_calls.get(key, int(calls)))

    def lookup(self, question_ids: Iterable[str]) -> np.ndarray:
        """n per question; 0 for questions with no correct answer yet (see the module doc)."""
        return np.array([self.min_calls.get(str(q), 0) for q in question_ids], dtype=np.float64)

    def state_dict(self) -> dict:
        return {"min_calls": dict(self.min_calls)}

    def load_state_dict(self, state: dict) -> None:
        self.min_calls = {str(k): int(v) for k, v in state.get("min_calls", {}).items()}


def otc_grpo_rewards(state: OTCState, question_ids: Sequence[str], tool_calls, correct,
                     c: float, alpha: float = 1.0, threshold: float = 1.0) -> np.ndarray:
    """Update ``state`` with this batch, then alpha * r_tool(m, n) * correctness."""
    m = _calls(tool_calls)
    r = _correctness(correct, m.shape)
    if len(question_ids) != m.size:
        raise ValueError(f"one question id per answer: {len(question_ids)} vs {m.size}")
    state.update(question_ids, m, r, threshold)
    return alpha * otc_grpo_tool_reward(m, state.lookup(question_ids), c) * r


def tool_use_metrics(tool_calls, correct, prefix: str = "tool") -> dict[str, float]:
    """Tool calls per episode, accuracy and tool productivity (correct answers per call;
    left out when no call was made)."""
    m = _calls(tool_calls)
    r = _correctness(correct, m.shape)
    if m.size == 0:
        return {}
    out = {f"{prefix}/calls_per_episode": float(m.mean()), f"{prefix}/accuracy": float(r.mean())}
    if m.sum() > 0:
        out[f"{prefix}/productivity"] = float(r.sum() / m.sum())
    return out


_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL | re.IGNORECASE)


def count_tool_calls(actions: Iterable[str | None], tool_tags: Sequence[str] = ("python", "search"),
                     answer_tag: str = "answer") -> int:
    """Tool calls in a sequence of replies: those whose first complete block is a tool tag.

    Mirrors how ToolUse-v0 reads a reply; pass only steps the environment accepted
    (``action_valid``), since budget-exceeding calls are not executed.
    """
    patterns = {t: re.compile(rf"<{t}>.*?</{t}>", re.DOTALL | re.IGNORECASE)
                for t in (*tool_tags, answer_tag)}
    count = 0
    for action in actions:
        if not action:
            continue
        text = _THINK.sub("", action)
        hits = [(m.start(), t) for t, p in patterns.items() if (m := p.search(text))]
        if hits and min(hits)[1] != answer_tag:
            count += 1
    return count


def episode_tool_calls(episode, tool_tags: Sequence[str] = ("python", "search"),
                       answer_tag: str = "answer") -> int:
    """Tool calls of an ``agentgym.episode.Episode``: ``episode.info["tool_calls"]`` when
    the rollout recorded it, else counted from its valid steps' actions."""
    if "tool_calls" in episode.info:
        return int(episode.info["tool_calls"])
    return count_tool_calls([s.action for s in episode.steps if s.action_valid], tool_tags, answer_tag)


def otc_episode_rewards(episodes: Sequence, mode: str, max_tool_calls: int, alpha: float = 1.0,
                        state: OTCState | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """The OTC reward of each episode, replacing its outcome reward; plus metrics.

    Correctness is the episode's total environment reward (ToolUse-v0: the verifier's
    score of the answer, 0 without one), tool calls come from ``episode_tool_calls``,
    the question id is ``episode.task_id``. ``mode`` is ``"grpo"`` (needs ``state``,
    which this call updates) or ``"ppo"``.
    """
    m = np.array([episode_tool_calls(ep) for ep in episodes], dtype=np.float64)
    correct = np.clip(np.array([ep.total_reward for ep in episodes], dtype=np.float64), 0.0, 1.0)
    if mode == "grpo":
        if state is None:
            raise ValueError("OTC-GRPO needs an OTCState (the per-question minima)")
        rewards = otc_grpo_rewards(state, [ep.task_id for ep in episodes], m, correct,
                                   max_tool_calls, alpha)
    elif mode == "ppo":
        rewards = otc_ppo_rewards(m, correct, max_tool_calls, alpha)
    else:
        raise ValueError(f"OTC mode must be grpo or ppo, not {mode!r}")
    metrics = tool_use_metrics(m, correct >= 1.0, prefix="tool")
    metrics["tool/otc_reward_mean"] = float(rewards.mean()) if rewards.size else 0.0
    return rewards, metrics


def otc_step_rewards(step_rewards, lengths, episodes: Sequence, mode: str, max_tool_calls: int,
                     alpha: float = 1.0, state: OTCState | None = None
                     ) -> tuple[np.ndarray, dict[str, float]]:
    """Flat per-step rewards with each episode's outcome replaced by its OTC reward.

    ``step_rewards`` is flat over ``episodes`` (``lengths[i]`` steps each, contiguous).
    The episode's summed environment reward is taken off its last step and the OTC
    reward put there instead, so episode returns, discounted step returns and the
    invalid-action penalty all see the OTC reward. ``mode="none"`` returns a copy.
    """
    r = np.array(step_rewards, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size != len(episodes) or lengths.sum() != r.size or np.any(lengths < 1):
        raise ValueError("lengths must give each episode's (>= 1) steps and sum to the step count")
    if mode == "none":
        return r, {}
    otc, metrics = otc_episode_rewards(episodes, mode, max_tool_calls, alpha, state)
    owner = np.repeat(np.arange(lengths.size), lengths)
    outcome = np.bincount(owner, weights=r, minlength=lengths.size)
    r[np.cumsum(lengths) - 1] += otc - outcome
    return r, metrics
