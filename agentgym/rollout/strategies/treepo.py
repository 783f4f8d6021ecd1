"""TreePO at turn level: a tree of agent turns grown within a leaf budget.

``width`` paths start per task. After every turn (a segment: one reply and the
environment's answer), each surviving path forks into ``branch`` paths that share it and
sample the next reply apart, while the task has fewer than ``leaves`` paths; paths end
where the environment ends them.
If every path has ended before the budget is reached, the tree regrows from a random
earlier step of a random finished leaf (the paper's fallback).
"""

from __future__ import annotations

import numpy as np

from agentgym.rollout.strategies.base import Fork, NewChain, Strategy


class TreePO(Strategy):
    name = "treepo"
    forks = True

    def __init__(self, width: int = 2, branch: int = 2, leaves: int = 8, seed: int = 0):
        super().__init__(width, seed)
        self.width, self.branch, self.leaves_budget = width, branch, leaves
        self.rng = np.random.default_rng(seed)

    def begin(self, tasks: int, iteration: int) -> None:
        self.leaves = [self.width] * tasks

    def initial_chains(self, task: int) -> int:
        return self.width

    def after_step(self, running):
        forks = []
        for x in running:
            room = self.leaves_budget - self.leaves[x.task_index]
            extra = min(self.branch - 1, room)
            if extra > 0:
                self.leaves[x.task_index] += extra
                forks += [Fork(x, len(x.episode.steps))] * extra
        return forks

    def when_idle(self, episodes):
        regrow = []
        for t, lives in enumerate(episodes):
            missing = self.leaves_budget - self.leaves[t]
            if missing <= 0:
                continue
            done = [x for x in lives if x.episode.length > 1
                    and x.episode.termination not in ("env_error", "timeout")]
            for _ in range(missing):
                if done:
                    x = done[self.rng.integers(len(done))]
                    regrow.append(Fork(x, int(self.rng.integers(1, x.episode.length))))
                else:
                    regrow.append(NewChain(t))
            self.leaves[t] = self.leaves_budget
        return regrow
