"""Tree-GRPO: M trees per task, each grown from a chain by L rounds of N expansions.

A node is one agent step. Each round, once every episode has ended, N nodes are drawn
per tree among its non-leaf nodes (steps that some episode continued after; with
replacement, as the official code, or without); each expansion forks the episode
through that node right after it and rolls a new chain to the end. A tree whose
episodes all ended at their first step has only its root to grow from. Leaves per task:
M * (1 + L * N).
"""

from __future__ import annotations

import numpy as np

from agentgym.algos.tree import draw_nodes
from agentgym.rollout.strategies.base import Fork, Strategy


class TreeGRPO(Strategy):
    name = "tree_grpo"
    forks = True

    def __init__(self, trees: int = 2, rounds: int = 1, expansions: int = 3,
                 replacement: bool = True, seed: int = 0):
        super().__init__(trees, seed)
        self.trees, self.rounds, self.expansions = trees, rounds, expansions
        self.replacement = replacement
        self.rng = np.random.default_rng(seed)

    def begin(self, tasks: int, iteration: int) -> None:
        self.round = 0

    def initial_chains(self, task: int) -> int:
        return self.trees

    def when_idle(self, episodes):
        if self.round >= self.rounds:
            return []
        self.round += 1
        forks = []
        for lives in episodes:
            trees: dict[str, list] = {}
            for x in lives:
                if x.episode.termination not in ("env_error", "timeout") and x.episode.steps:
                    trees.setdefault(x.episode.root_id, []).append(x)
            for members in trees.values():
                nodes = non_leaf_nodes(members)
                for k in draw_nodes(self.rng, len(nodes), self.expansions, self.replacement):
                    forks.append(nodes[k])
        return forks


def non_leaf_nodes(members) -> list[Fork]:
    """One fork point per distinct non-leaf step of a tree (or its root if it has none)."""
    seen, nodes = set(), []
    for x in members:
        for k, step in enumerate(x.episode.steps[:-1]):
            key = (step.info.get("shared_from", x.episode.episode_id), k)
            if key not in seen:
                seen.add(key)
                nodes.append(Fork(x, k + 1))
    return nodes or [Fork(members[0], 0)]
