"""Tree structure of a batch of episodes, for the tree advantages in ``algos/tree.py``.

A tree rollout's episodes are its leaves; a step a fork inherited is marked
``info["shared_from"]`` with the episode that sampled it, so (that episode, step index)
names one node of the tree wherever it is repeated.
"""

from __future__ import annotations

import numpy as np

from agentgym.algos.tree import shared_mean, tree_grpo_advantages, treepo_advantages
from agentgym.episode import Episode

TREE_ESTIMATORS = ("tree_grpo", "treepo")


def step_node_keys(eps: list[Episode]) -> list[str]:
    return [ep.node_key(k) for ep in eps for k in range(len(ep.steps))]


def tree_episode_advantages(name: str, eps: list[Episode], returns: np.ndarray,
                            normalize: str = "std") -> np.ndarray:
    """One advantage per leaf (episode): Tree-GRPO or TreePO over each task's tree(s)."""
    groups = [ep.group_id for ep in eps]
    if name == "tree_grpo":
        trees = [ep.root_id for ep in eps]
        return tree_grpo_advantages(returns, groups, trees, normalize=normalize)
    paths = [[ep.node_key(k) for k in range(len(ep.steps))] for ep in eps]
    return treepo_advantages(returns, groups, paths)


def hard_attribution(advantage: np.ndarray, eps: list[Episode]) -> np.ndarray:
    """ARPO's "hard" attribution: a step shared by several leaves gets their mean."""
    return shared_mean(advantage, step_node_keys(eps))
