"""Credit assignment for a batch of episodes, as the config composes it from algos/.

reward shaping (invalid-action penalty) -> episode returns -> episode-level advantage
(GRPO / RLOO within each group) -> one advantage per step, written onto the steps.

Episodes that ended because the environment failed (env_error, timeout) say nothing
about the policy: they get no advantage and are not trained on, and they do not enter
their group's statistics.
"""

from __future__ import annotations

import numpy as np

from agentgym.algos.grpo import episode_advantages
from agentgym.algos.rewards import invalid_action_penalty
from agentgym.config import AlgorithmConfig
from agentgym.episode import ENV_ERROR, TIMEOUT, Episode


def trainable(episodes: list[Episode]) -> list[Episode]:
    return [ep for ep in episodes if ep.termination not in (ENV_ERROR, TIMEOUT) and ep.steps]


def assign_advantages(episodes: list[Episode], cfg: AlgorithmConfig) -> dict[str, float]:
    """Set ``step.advantage`` on every step of the trainable episodes; return metrics."""
    eps = trainable(episodes)
    if not eps:
        return {}
    rewards = np.array([s.reward for ep in eps for s in ep.steps], dtype=np.float64)
    valid = np.array([s.action_valid for ep in eps for s in ep.steps], dtype=bool)
    owner = np.repeat(np.arange(len(eps)), [len(ep.steps) for ep in eps])
    shaped = invalid_action_penalty(rewards, valid, cfg.reward.invalid_action_penalty)
    returns = np.bincount(owner, weights=shaped, minlength=len(eps))

    opts = {"normalize": cfg.advantage.normalize} if cfg.advantage.episode == "grpo" else {}
    adv = episode_advantages(cfg.advantage.episode, returns, [ep.group_id for ep in eps], **opts)

    for ep, a, ret in zip(eps, adv, returns):
        ep.info["return"] = float(ret)
        for step in ep.steps:
            step.advantage = float(a)
            step.advantage_parts = {"episode": float(a)}

    groups: dict[str, list[float]] = {}
    for ep, ret in zip(eps, returns):
        groups.setdefault(ep.group_id, []).append(float(ret))
    flat = [max(g) == min(g) for g in groups.values()]
    return {
        "credit/return_mean": float(returns.mean()),
        "credit/advantage_mean": float(adv.mean()),
        "credit/advantage_std": float(adv.std()),
        "credit/advantage_abs_mean": float(np.abs(adv).mean()),
        "credit/zero_variance_groups": float(np.mean(flat)),
    }
