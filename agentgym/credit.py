"""Credit assignment for a batch of episodes, as the config composes it from algos/.

    reward shaping (OTC tool-efficiency reward, invalid-action penalty, DAPO overlong
      penalty, ARPO format reward)
      -> episode returns -> episode-level advantage A^E (GRPO / RLOO within each group;
         with ``reward.invalid_action_scope: step`` each step sample has its own score,
         its trajectory's return minus its own invalid-action penalty, as verl-agent)
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

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from agentgym.algos.empg import empg_advantages, step_entropy
from agentgym.algos.gigpo import step_group_advantages, step_groups
from agentgym.algos.grpo import episode_advantages
from agentgym.algos.otc import OTCState, otc_step_rewards
from agentgym.algos.rewards import discounted_returns, format_reward, invalid_action_penalty, overlong_penalty
from agentgym.algos.salt import salt_advantages, transition_nodes
from agentgym.config import AlgorithmConfig
from agentgym.episode import ENV_ERROR, TIMEOUT, Episode, Step
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


@dataclass
class CreditBatch:
    """What an estimator sees: the batch's trainable episodes as flat step arrays."""

    cfg: AlgorithmConfig
    episodes: list[Episode]
    steps: list[Step]
    owner: np.ndarray            # episode index of every step
    lengths: np.ndarray          # steps per episode
    group_of_ep: list[str]
    group_of_step: np.ndarray
    rewards: np.ndarray          # environment (or OTC) reward per step
    own: np.ndarray              # shaping charged to its own step (penalties, overlong, format)
    returns: np.ndarray          # per episode: the sum of shaped rewards
    invalid: np.ndarray          # the invalid-action penalty per step (<= 0)

    def options(self, name: str) -> Any:
        """An estimator's own section, ``algorithm.advantage.options.<name>``, as its
        registered dataclass (defaults where the recipe sets nothing)."""
        return estimator_options(name, self.cfg.advantage.options.get(name, {}))


# kind -> name -> estimator. "episode": fn(batch) -> A^E per step; "step": fn(batch,
# a_episode, parts, metrics) -> advantage per step; "modulate": fn(batch, advantage,
# parts, metrics) -> advantage per step. Each writes its components into ``parts``
# (shown by the viewer) and its ``credit/...`` numbers into ``metrics``.
ESTIMATORS: dict[str, dict[str, Callable]] = {"episode": {}, "step": {}, "modulate": {}}
# name -> the dataclass of its section ``algorithm.advantage.options.<name>``
ESTIMATOR_CONFIGS: dict[str, type] = {}


def register_estimator(kind: str, name: str, config: type | None = None):
    """Decorator: make ``fn`` selectable as ``algorithm.advantage.<kind>: <name>``.

    ``config``, a dataclass with defaults, is the estimator's own section: a recipe sets
    it under ``algorithm.advantage.options.<name>`` and the estimator reads it with
    ``batch.options(name)``. (The built-in estimators' sections are typed fields of
    ``AdvantageConfig``: ``advantage.gigpo``, ``advantage.empg``.)
    """
    if kind not in ESTIMATORS:
        raise ValueError(f"estimator kind must be one of {', '.join(ESTIMATORS)}, got {kind!r}")
    if config is not None and not dataclasses.is_dataclass(config):
        raise TypeError(f"register_estimator({kind!r}, {name!r}): config must be a dataclass")

    def add(fn: Callable) -> Callable:
        ESTIMATORS[kind][name] = fn
        if config is not None:
            ESTIMATOR_CONFIGS[name] = config
        return fn
    return add


def estimator_options(name: str, keys: dict | None) -> Any:
    """The section ``algorithm.advantage.options.<name>`` as the estimator's dataclass."""
    from agentgym.errors import ConfigError

    path = f"algorithm.advantage.options.{name}"
    if name not in ESTIMATOR_CONFIGS:
        known = ", ".join(ESTIMATOR_CONFIGS) or "none registered"
        raise ConfigError(f"{path}: no estimator named {name!r} registers options ({known})")
    schema = ESTIMATOR_CONFIGS[name]
    if not isinstance(keys, dict):
        raise ConfigError(f"{path} must be a mapping of keys, got {keys!r}")
    fields = {f.name for f in dataclasses.fields(schema)}
    for key in keys:
        if key not in fields:
            raise ConfigError(f"unknown config key '{path}.{key}'. Valid keys here: {', '.join(sorted(fields))}.")
    try:
        return schema(**keys)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from None


def estimator_names(kind: str) -> tuple[str, ...]:
    """The names ``algorithm.advantage.<kind>`` accepts ("none" for step and modulate)."""
    return (() if kind == "episode" else ("none",)) + tuple(ESTIMATORS[kind])


def _episode_estimator(name: str):
    def estimate(b: CreditBatch) -> np.ndarray:
        adv = b.cfg.advantage
        if b.cfg.reward.invalid_action_scope == "step":   # verl-agent: R - the step's own penalty
            scores = b.returns[b.owner] + b.invalid
            opts = {"normalize": adv.normalize} if name == "grpo" else {}
            return episode_advantages(name, scores, b.group_of_step, **opts)
        opts = {}
        if name == "grpo":
            opts["normalize"] = adv.normalize
            if adv.episode_scope == "step":
                opts["counts"] = b.lengths
        return episode_advantages(name, b.returns, b.group_of_ep, **opts)[b.owner]
    return estimate


for _name in ("grpo", "rloo"):
    register_estimator("episode", _name)(_episode_estimator(_name))


def _tree_estimator(name: str):
    def estimate(b: CreditBatch) -> np.ndarray:
        return tree_episode_advantages(name, b.episodes, b.returns, b.cfg.advantage.normalize)[b.owner]
    return estimate


for _name in TREE_ESTIMATORS:   # tree rollouts: advantages over each task's tree(s) of leaves
    register_estimator("episode", _name)(_tree_estimator(_name))


@register_estimator("step", "gigpo")
def _gigpo(b: CreditBatch, a_episode, parts, metrics) -> np.ndarray:
    g = b.cfg.advantage.gigpo
    G = discounted_returns(b.rewards, g.gamma, b.owner, undiscounted=b.own + b.invalid)
    groups = step_groups(b.group_of_step, [s.anchor for s in b.steps], match=g.anchor_match,
                         threshold=g.similarity_threshold, autojunk=g.similarity_autojunk)
    parts["step"] = step_group_advantages(G, groups, normalize=g.normalize)
    sizes = np.bincount(groups)
    metrics.update(_group_size_metrics("credit/step_group", groups))
    metrics["credit/singleton_share"] = float(np.mean(sizes == 1))
    metrics["credit/singleton_step_share"] = float(np.mean(sizes[groups] == 1))
    metrics["credit/step_return_mean"] = float(G.mean())
    return a_episode + g.weight * parts["step"]


@register_estimator("step", "salt")
def _salt(b: CreditBatch, a_episode, parts, metrics) -> np.ndarray:
    nodes = transition_nodes(b.group_of_step, _transition_keys(b.episodes))
    parts["salt"] = salt_advantages(a_episode, b.owner, nodes)
    metrics.update(_group_size_metrics("credit/salt_node", nodes))
    metrics["credit/salt_singleton_share"] = float(np.mean(np.bincount(nodes) == 1))
    return parts["salt"]


@register_estimator("modulate", "empg")
def _empg(b: CreditBatch, advantage, parts, metrics) -> np.ndarray:
    e = b.cfg.advantage.empg
    source = [s.entropies for s in b.steps] if e.entropy_source == "entropy" else \
        [s.logprobs for s in b.steps]
    h = step_entropy(source, source=e.entropy_source)
    res = empg_advantages(advantage, h, b.owner, k=e.k, k_next=e.k_next, zeta=e.zeta)
    parts["base"] = advantage
    parts["empg_scale"] = res.scale
    parts["empg_bonus"] = res.bonus
    metrics.update({"credit/step_entropy_mean": float(h.mean()),
                    "credit/step_entropy_min": float(h.min()),
                    "credit/step_entropy_max": float(h.max()),
                    "credit/empg_scale_min": float(res.scale.min()),
                    "credit/empg_scale_max": float(res.scale.max()),
                    "credit/empg_shift": res.shift})
    return res.advantage


def _shaping(cfg: AlgorithmConfig, steps: list[Step], rewards: np.ndarray,
             max_new_tokens: int | None, metrics: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(own-step shaping, invalid-action penalty) per step."""
    rc = cfg.reward
    valid = np.array([s.action_valid for s in steps], dtype=bool)
    invalid = invalid_action_penalty(rewards, valid, rc.invalid_action_penalty) - rewards
    own = np.zeros_like(rewards)
    if rc.overlong.buffer > 0:
        limit = rc.overlong.max_length or max_new_tokens
        if limit is None:
            raise ValueError("reward.overlong needs max_length (or the rollout's max_new_tokens)")
        long = overlong_penalty([len(s.response_ids) for s in steps], limit, rc.overlong.buffer,
                                rc.overlong.penalty)
        own += long
        metrics["credit/overlong_penalty_mean"] = float(long.mean())
        metrics["credit/overlong_share"] = float(np.mean(long < 0))
    if rc.format:
        fmt = format_reward([s.action is not None for s in steps], rc.format)
        own += fmt
        metrics["credit/format_reward_mean"] = float(fmt.mean())
    return own, invalid


def assign_advantages(episodes: list[Episode], cfg: AlgorithmConfig,
                      otc_state: OTCState | None = None, *,
                      max_new_tokens: int | None = None) -> dict[str, float]:
    """Set ``step.advantage`` (and its parts) on every step of the trainable episodes;
    return ``credit/...`` metrics. ``otc_state`` holds OTC-GRPO's per-question minima;
    ``max_new_tokens`` is the overlong penalty's L when ``reward.overlong.max_length``
    is unset."""
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
    metrics: dict[str, float] = {}
    if otc.mode != "none":  # the outcome reward becomes the OTC reward (stored rewards stay raw)
        if otc.mode == "grpo" and otc_state is None:
            otc_state = OTCState()
        rewards, otc_metrics = otc_step_rewards(rewards, lengths, eps, otc.mode, otc.max_tool_calls,
                                                otc.alpha, otc_state)
        metrics.update(otc_metrics)
    own, invalid = _shaping(cfg, steps, rewards, max_new_tokens, metrics)
    step_scope = cfg.reward.invalid_action_scope == "step"
    shaped = rewards + own + (0.0 if step_scope else invalid)
    returns = np.bincount(owner, weights=shaped, minlength=len(eps))
    batch = CreditBatch(cfg, eps, steps, owner, lengths, group_of_ep, group_of_step, rewards, own,
                        returns, invalid)

    a_episode = ESTIMATORS["episode"][adv_cfg.episode](batch)
    parts: dict[str, np.ndarray] = {"episode": a_episode}
    advantage = a_episode
    if adv_cfg.step != "none":
        advantage = ESTIMATORS["step"][adv_cfg.step](batch, a_episode, parts, metrics)
    if adv_cfg.modulate != "none":
        advantage = ESTIMATORS["modulate"][adv_cfg.modulate](batch, advantage, parts, metrics)

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
        metrics.update(_stats(f"credit/adv_{name}", values))
    return metrics
