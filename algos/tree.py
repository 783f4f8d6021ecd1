"""Tree-rollout math: branching decisions and the advantages of tree leaves.

A rollout tree's leaves are full trajectories; leaves that forked from one another
share their first steps. Every function here is pure and vectorised over leaves (or
over step rows), with the worked examples of ALGORITHMS.md ("ARPO for tool use",
"Tree rollouts") as tests.

- ``arpo_branch_probability``: ARPO's entropy-adaptive branching, clip(β + w·ΔH, 0, 1).
- ``arpo_official_branch``: the official code's rule, branch when U − w·ΔH ≤ β.
- ``tree_grpo_advantages``: GRPO over all leaves of a task + GRPO within the leaf's tree.
- ``treepo_advantages``: mean over depths of (r − mean of the leaves sharing the prefix
  at that depth), groups of size > 1 only, then whitened over the batch.
- ``shared_mean``: per step row, the mean over the rows of the same shared step (ARPO's
  "hard" attribution; the advantage of a merged shared step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agentgym.algos.grpo import grpo_advantages

__all__ = ["arpo_branch_probability", "arpo_official_branch", "tree_grpo_advantages",
           "treepo_advantages", "shared_mean", "draw_nodes"]


def arpo_branch_probability(delta_h, beta: float = 0.5, weight: float = 0.2) -> np.ndarray:
    """P(branch) = clip(β + w·ΔH, 0, 1), ΔH = entropy now − the chain's initial entropy."""
    return np.clip(beta + weight * np.asarray(delta_h, dtype=np.float64), 0.0, 1.0)


def arpo_official_branch(uniform, delta_h, beta: float = 0.5, weight: float = 0.2) -> np.ndarray:
    """The official code's test: branch when U − w·ΔH ≤ β, U ~ Uniform(0, 1)."""
    return np.asarray(uniform, dtype=np.float64) - weight * np.asarray(delta_h, dtype=np.float64) <= beta


def tree_grpo_advantages(rewards, task_ids, tree_ids, *, normalize: str = "std",
                         eps: float = 1e-6) -> np.ndarray:
    """Tree-GRPO: A_i = GRPO_i(leaves of the task) + GRPO_i(leaves of i's tree).

    ``tree_ids`` need only be unique within a task (they are paired with the task id).
    """
    r = np.asarray(rewards, dtype=np.float64)
    tasks = np.asarray(task_ids).astype(str)
    trees = np.char.add(np.char.add(tasks, "\x00"), np.asarray(tree_ids).astype(str))
    return (grpo_advantages(r, tasks, normalize=normalize, eps=eps)
            + grpo_advantages(r, trees, normalize=normalize, eps=eps))


def treepo_advantages(rewards, task_ids, paths: Sequence[Sequence], *, whiten: bool = True,
                      eps: float = 1e-6) -> np.ndarray:
    """TreePO: for leaf i, the mean over depths j = 0..len(path) of (r_i − mean of the
    leaves of i's task whose path starts with i's first j nodes), counting only groups of
    more than one leaf; then (A − mean) / (std + eps) over the batch.

    ``paths[i]`` is leaf i's sequence of node keys (equal keys = the same shared node).
    """
    r = np.asarray(rewards, dtype=np.float64)
    n = r.size
    if n == 0:
        return r
    sums, counts = np.zeros(n), np.zeros(n)
    depth = max(len(p) for p in paths)
    for j in range(depth + 1):
        keys = [(task_ids[i], tuple(paths[i][:j])) if len(paths[i]) >= j else None
                for i in range(n)]
        present = np.array([k is not None for k in keys])
        labels = {k: g for g, k in enumerate(dict.fromkeys(k for k in keys if k is not None))}
        group = np.array([labels[k] if k is not None else -1 for k in keys])
        idx = group[present]
        size = np.bincount(idx, minlength=len(labels)).astype(np.float64)
        mean = np.bincount(idx, weights=r[present], minlength=len(labels)) / np.maximum(size, 1)
        use = present.copy()
        use[present] = size[idx] > 1
        sums[use] += r[use] - mean[group[use]]
        counts[use] += 1
    adv = np.divide(sums, counts, out=np.zeros(n), where=counts > 0)
    if whiten and n > 1:
        adv = (adv - adv.mean()) / (adv.std(ddof=1) + eps)
    return adv


def shared_mean(values, keys) -> np.ndarray:
    """For each row, the mean of ``values`` over the rows with the same key."""
    v = np.asarray(values, dtype=np.float64)
    _, inverse = np.unique(np.asarray(keys).astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    totals = np.bincount(inverse, weights=v)
    sizes = np.bincount(inverse)
    return totals[inverse] / sizes[inverse]


def draw_nodes(rng: np.random.Generator, candidates: int, n: int,
               replacement: bool = True) -> np.ndarray:
    """Indices of ``n`` nodes to expand among ``candidates`` (uniform; without
    replacement at most ``candidates`` are drawn)."""
    if candidates <= 0 or n <= 0:
        return np.zeros(0, dtype=np.intp)
    if replacement:
        return rng.integers(0, candidates, size=n)
    return rng.permutation(candidates)[:n]
