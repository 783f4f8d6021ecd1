"""GiGPO (Group-in-Group Policy Optimization): anchor-state step groups.

Steps of a batch are flat arrays, one entry per step, trajectories contiguous and in
time order (the layout of ``algos/rewards.py``). Within a group (trajectories started
from the same task), steps whose anchor state is identical form a *step group*; a
step's advantage compares its discounted return with the other members of its step
group:

    R_t  = sum_{k >= t} gamma^(k - t) r_k                      (gamma = 0.95)
    A^S  = R_t - mean(step group)                              normalize="mean_norm" (default)
    A^S  = (R_t - mean(step group)) / (std(step group) + eps)  normalize="mean_std_norm"
    A    = A^E + omega * A^S                                   (omega = 1.0)

A^E is the episode-level (GRPO) advantage of the step's trajectory; a step group of one
step gets A^S = 0; std is unbiased (n - 1); eps = 1e-6. The invalid-action penalty
enters R_t of its own step only (pass it as ``undiscounted``).

Anchors match exactly by default. ``match="similarity"`` lets a state join the first
existing step group (in order of first appearance within its group) whose
representative has ``difflib.SequenceMatcher`` ratio >= ``threshold`` (0.95), as the
reference code does, with difflib's default ``autojunk=True`` (characters that make up
more than 1% of a text of 200+ characters, such as spaces, are junk and cannot anchor
a match, so long descriptions score lower than with ``autojunk=False``).

The episode-level normalisation scope is explicit: ``episode_scope="trajectory"``
(default, the paper) computes the group's mean/std over trajectories;
``"step"`` over step samples (each trajectory weighted by its length), as the
reference code does.
"""

from __future__ import annotations

import difflib
from typing import Literal, NamedTuple

import numpy as np

from agentgym.algos.grpo import grpo_advantages
from agentgym.algos.labels import factorize
from agentgym.algos.rewards import discounted_returns

__all__ = ["step_groups", "step_group_advantages", "gigpo_advantages", "GiGPOResult"]


def _similar_clusters(group_codes: np.ndarray, anchors: list, threshold: float,
                      autojunk: bool = True) -> np.ndarray:
    """Cluster index per step: first-seen representative with ratio >= threshold.

    Exact duplicates are merged first, so the similarity loop runs over the distinct
    anchors of each group only, in order of first appearance.
    """
    pair = factorize(group_codes, anchors)
    first = np.zeros(int(pair.max()) + 1, dtype=np.intp)
    first[pair[::-1]] = np.arange(pair.size)[::-1]      # first step of each distinct pair
    cluster_of_pair = np.empty(first.size, dtype=np.intp)
    reps: dict[int, list[tuple[int, difflib.SequenceMatcher]]] = {}
    n_clusters = 0
    for p, k in enumerate(first):
        g, text = int(group_codes[k]), str(anchors[k])
        joined = None
        for cluster, matcher in reps.get(g, []):
            matcher.set_seq1(text)  # seq2 (the representative) stays cached
            if matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold \
                    and matcher.ratio() >= threshold:
                joined = cluster
                break
        if joined is None:
            matcher = difflib.SequenceMatcher(None, autojunk=autojunk)
            matcher.set_seq2(text)
            reps.setdefault(g, []).append((n_clusters, matcher))
            joined = n_clusters
            n_clusters += 1
        cluster_of_pair[p] = joined
    return cluster_of_pair[pair]


def step_groups(group_ids, anchors, *, match: Literal["exact", "similarity"] = "exact",
                threshold: float = 0.95, autojunk: bool = True) -> np.ndarray:
    """Step-group index (dense ints) per step: same group and same (or similar) anchor."""
    g = factorize(group_ids)
    a = anchors.tolist() if isinstance(anchors, np.ndarray) else list(anchors)
    if len(a) != g.size:
        raise ValueError(f"anchors must have one entry per step: {len(a)} vs {g.size}")
    if g.size == 0:
        return g
    if match == "exact":
        return factorize(g, a)
    if match == "similarity":
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"similarity threshold must be in (0, 1], got {threshold}")
        return _similar_clusters(g, [str(x) for x in a], threshold, autojunk)
    raise ValueError(f"match must be 'exact' or 'similarity', got {match!r}")


def step_group_advantages(step_returns, groups, *,
                          normalize: Literal["mean_norm", "mean_std_norm"] = "mean_norm",
                          eps: float = 1e-6) -> np.ndarray:
    """A^S per step from its return and its step-group index; singletons get 0."""
    r = np.asarray(step_returns, dtype=np.float64)
    g = np.asarray(groups)
    if r.shape != g.shape:
        raise ValueError(f"step_returns and groups differ in shape: {r.shape} vs {g.shape}")
    if normalize not in ("mean_norm", "mean_std_norm"):
        raise ValueError(f"normalize must be 'mean_norm' or 'mean_std_norm', got {normalize!r}")
    if r.size == 0:
        return r.copy()
    n_groups = int(g.max()) + 1
    n = np.bincount(g, minlength=n_groups).astype(np.float64)
    mean = np.bincount(g, weights=r, minlength=n_groups) / np.maximum(n, 1)
    dev = r - mean[g]
    dev[n[g] == 1] = 0.0
    if normalize == "mean_norm":
        return dev
    var = np.divide(np.bincount(g, weights=dev * dev, minlength=n_groups), n - 1.0,
                    out=np.zeros(n_groups), where=n > 1)
    return dev / (np.sqrt(var)[g] + eps)


class GiGPOResult(NamedTuple):
    advantage: np.ndarray        # A^E + omega * A^S, per step
    episode: np.ndarray          # A^E of the step's trajectory, per step
    step: np.ndarray             # A^S, per step (before omega)
    step_group: np.ndarray       # step-group index per step
    step_return: np.ndarray      # discounted return R_t per step


def gigpo_advantages(step_rewards, episode_ids, group_ids, anchors, *, gamma: float = 0.95,
                     omega: float = 1.0, undiscounted=None,
                     normalize: Literal["mean_norm", "mean_std_norm"] = "mean_norm",
                     episode_normalize: Literal["std", "none"] = "std",
                     episode_scope: Literal["trajectory", "step"] = "trajectory",
                     match: Literal["exact", "similarity"] = "exact", threshold: float = 0.95,
                     eps: float = 1e-6) -> GiGPOResult:
    """GiGPO advantage of every step (flat arrays, one entry per step).

    ``step_rewards`` are the environment rewards; ``undiscounted`` the per-step shaping
    (e.g. ``-0.1`` on invalid actions) that joins the trajectory return and its own
    step's return but is not discounted backwards. ``group_ids`` label each step's
    group (constant along a trajectory).
    """
    r = np.asarray(step_rewards, dtype=np.float64)
    ep = factorize(episode_ids)
    u = np.zeros_like(r) if undiscounted is None else np.asarray(undiscounted, dtype=np.float64)
    if episode_scope not in ("trajectory", "step"):
        raise ValueError(f"episode_scope must be 'trajectory' or 'step', got {episode_scope!r}")
    if r.size == 0:
        z = np.zeros(0)
        return GiGPOResult(z, z, z, np.zeros(0, dtype=np.intp), z)
    G = discounted_returns(r, gamma, episode_ids, undiscounted=u)
    n_ep = int(ep.max()) + 1
    totals = np.bincount(ep, weights=r + u, minlength=n_ep)
    lengths = np.bincount(ep, minlength=n_ep)
    first = np.zeros(n_ep, dtype=np.intp)
    first[ep[::-1]] = np.arange(r.size)[::-1]        # index of each trajectory's first step
    ep_groups = np.asarray(group_ids)[first]
    a_ep = grpo_advantages(totals, ep_groups, normalize=episode_normalize, eps=eps,
                           counts=lengths if episode_scope == "step" else None)[ep]
    groups = step_groups(group_ids, anchors, match=match, threshold=threshold)
    a_step = step_group_advantages(G, groups, normalize=normalize, eps=eps)
    return GiGPOResult(a_ep + omega * a_step, a_ep, a_step, groups, G)
