"""Credit assignment for a batch of episodes, as the config composes it from algos/.

    reward shaping (OTC tool-efficiency reward, invalid-action penalty)
      -> episode returns -> episode-level advantage A^E (GRPO / RLOO within each group)
      -> step-level term, ``advantage.step``:
           none   A = A^E
           gigpo  A = A^E + omega * A^S   (anchor-state step groups, discounted returns)
           salt   A = mean of A^E over the trajectories through the step's
                      (state, action, next state) node
      -> modulation, ``advantage.modulate``:
           none
           empg   A = g(H) * A + zeta * f(H_next), shifted to zero batch mean
      -> one advantage per step, written onto the steps (``step.advantage``), and each
         component in ``step.advantage_parts`` for the episode viewer.

Episodes that ended because the environment failed (env_error, timeout) say nothing
about the policy: they get no advantage and are not trained on, and they do not enter
their group's statistics.
"""

from __future__ import annotations

import numpy as np

from agentgym.algos.empg import empg_advantages, step_entropy
from agentgym.algos.gigpo import step_group_advantages, step_groups
from agentgym.algos.grpo import episode_advantages
from agentgym.algos.otc import OTCState, otc_step_rewards
from agentgym.algos.rewards import discounted_returns, invalid_action_penalty
from agentgym.algos.salt import salt_advantages, transition_nodes
from agentgym.config import AlgorithmConfig
from agentgym.episode import ENV_ERROR, TIMEOUT, Episode
from agentgym.tree_credit import TREE_ESTIMATORS, hard_attribution, tree_episode_advantages


def trainable(episodes: list[Episode]) -> list[Episode]:
    return [ep for ep in episodes if ep.termination not in (ENV_ERROR, TIMEOUT) and ep.steps]


def _stats(prefix: str, values: np.ndarray) -> dict[str, float]:
    return {f"{prefix}_mean": float(values.mean()), f"{prefix}_std": float(values.std()),
            f"{prefix}_abs_mean": float(np.abs(values).mean())}


def _group_size_metrics(prefix: str, groups: np.ndarray) -> dict[str, float]:
    """Distribution of step-group (or graph-node) sizes, and how many are singletons."""
    sizes = np.bincount(groups)
    sizes = sizes[sizes > 0]
    return {f"{prefix}_groups": float(sizes.size),
            f"{prefix}_size_mean": float(sizes.mean()),
            f"{prefix}_size_p50": float(np.percentile(sizes, 50)),
            f"{prefix}_size_p90": float(np.percentile(sizes, 90)),
            f"{prefix}_size_max": float(sizes.max())}


def _transition_keys(eps: list[Episode]) -> list[str]:
    """SALT node key of every step: (state, action, next state)."""
    keys = []
    for ep in eps:
        for t, step in enumerate(ep.steps):
            action = step.action if step.action is not None else "\x01raw:" + step.response_text
            nxt = ep.steps[t + 1].anchor if t + 1 < len(ep.steps) else f"\x02end:{ep.termination}"
            keys.append(f"{step.anchor}\x00{action}\x00{nxt}")
    return keys


def assign_advantages(episodes: list[Episode], cfg: AlgorithmConfig,
                      otc_state: OTCState | None = None) -> dict[str, float]:
    """Set ``step.advantage`` (and its parts) on every step of the trainable episodes;
    return ``credit/...`` metrics. ``otc_state`` holds OTC-GRPO's per-question minima."""
    eps = trainable(episodes)
    if not eps:
        return {}
    adv_cfg = cfg.advantage
    steps = [s for ep in eps for s in ep.steps]
    lengths = np.array([len(ep.steps) for ep in eps])
    owner = np.repeat(np.arange(len(eps)), lengths)
    group_of_ep = [ep.group_id for ep in eps]
    group_of_step = np.repeat(np.array(group_of_ep, dtype=str), lengths)
    rewards = np.array([s.reward for s in steps], dtype=np.float64)
    otc = cfg.reward.otc
    otc_metrics: dict[str, float] = {}
    if otc.mode != "none":  # the outcome reward becomes the OTC reward (stored rewards stay raw)
        if otc.mode == "grpo" and otc_state is None:
            otc_state = OTCState()
        rewards, otc_metrics = otc_step_rewards(rewards, lengths, eps, otc.mode, otc.max_tool_calls,
                                                otc.alpha, otc_state)
    valid = np.array([s.action_valid for s in steps], dtype=bool)
    shaped = invalid_action_penalty(rewards, valid, cfg.reward.invalid_action_penalty)
    returns = np.bincount(owner, weights=shaped, minlength=len(eps))

    opts = {}
    if adv_cfg.episode == "grpo":
        opts["normalize"] = adv_cfg.normalize
        if adv_cfg.episode_scope == "step":
            opts["counts"] = lengths
    if adv_cfg.episode in TREE_ESTIMATORS:
        a_episode = tree_episode_advantages(adv_cfg.episode, eps, returns, adv_cfg.normalize)[owner]
    else:
        a_episode = episode_advantages(adv_cfg.episode, returns, group_of_ep, **opts)[owner]

    parts: dict[str, np.ndarray] = {"episode": a_episode}
    metrics: dict[str, float] = dict(otc_metrics)
    if adv_cfg.step == "gigpo":
        G = discounted_returns(rewards, adv_cfg.gamma, owner, undiscounted=shaped - rewards)
        groups = step_groups(group_of_step, [s.anchor for s in steps], match=adv_cfg.anchor_match,
                             threshold=adv_cfg.similarity_threshold)
        parts["step"] = step_group_advantages(G, groups, normalize=adv_cfg.step_normalize)
        advantage = a_episode + adv_cfg.step_weight * parts["step"]
        sizes = np.bincount(groups)
        metrics.update(_group_size_metrics("credit/step_group", groups))
        metrics["credit/singleton_share"] = float(np.mean(sizes == 1))
        metrics["credit/singleton_step_share"] = float(np.mean(sizes[groups] == 1))
        metrics["credit/step_return_mean"] = float(G.mean())
    elif adv_cfg.step == "salt":
        nodes = transition_nodes(group_of_step, _transition_keys(eps))
        parts["salt"] = salt_advantages(a_episode, owner, nodes)
        advantage = parts["salt"]
        metrics.update(_group_size_metrics("credit/salt_node", nodes))
        metrics["credit/salt_singleton_share"] = float(np.mean(np.bincount(nodes) == 1))
    else:
        advantage = a_episode

    if adv_cfg.modulate == "empg":
        e = adv_cfg.empg
        source = [s.entropies for s in steps] if e.entropy_source == "entropy" else \
            [s.logprobs for s in steps]
        h = step_entropy(source, source=e.entropy_source)
        res = empg_advantages(advantage, h, owner, k=e.k, k_next=e.k_next, zeta=e.zeta)
        parts["base"] = advantage
        parts["empg_scale"] = res.scale
        parts["empg_bonus"] = res.bonus
        advantage = res.advantage
        metrics.update({"credit/step_entropy_mean": float(h.mean()),
                        "credit/step_entropy_min": float(h.min()),
                        "credit/step_entropy_max": float(h.max()),
                        "credit/empg_scale_min": float(res.scale.min()),
                        "credit/empg_scale_max": float(res.scale.max()),
                        "credit/empg_shift": res.shift})

    if adv_cfg.attribution == "hard":
        parts["soft"] = advantage
        advantage = hard_attribution(advantage, eps)

    for k, step in enumerate(steps):
        step.advantage = float(advantage[k])
        step.advantage_parts = {name: float(v[k]) for name, v in parts.items()}
    for ep, ret in zip(eps, returns):
        ep.info["return"] = float(ret)

    groups_ret: dict[str, list[float]] = {}
    for g, ret in zip(group_of_ep, returns):
        groups_ret.setdefault(g, []).append(float(ret))
    flat = [max(g) == min(g) for g in groups_ret.values()]
    metrics.update({
        "credit/return_mean": float(returns.mean()),
        "credit/zero_variance_groups": float(np.mean(flat)),
        **_stats("credit/advantage", advantage),
    })
    for name, values in parts.items():
        if name in ("episode", "step", "salt", "base"):
            metrics.update(_stats(f"credit/adv_{name}", values))
    return metrics
