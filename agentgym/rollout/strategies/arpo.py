"""ARPO's entropy-adaptive branching (tool use).

Budget n leaves per task; ``initial`` chains start (the paper: n / 2). Each reply the
policy samples after an environment observation is measured by the mean entropy of its
first <= ``entropy_tokens`` tokens; ΔH is that minus the chain's initial entropy (of its
first reply). The episode then branches (a child re-samples that reply from the same
state) with probability clip(β + w·ΔH, 0, 1) while the task's budget allows; the
official code's rule (U − w·ΔH ≤ β, ``beam`` children) is an option. When every episode
has ended with budget left, fresh chains refill it.

The initial entropies are per rollout: they are reset at the start of every batch (the
official code keeps them across batches, which compares a reply against the entropy of
an unrelated earlier chain).
"""

from __future__ import annotations

import numpy as np

from agentgym.algos.tree import arpo_branch_probability, arpo_official_branch
from agentgym.rollout.strategies.base import Fork, NewChain, Strategy


class ARPOBranching(Strategy):
    name = "arpo"
    forks = True

    def __init__(self, budget: int = 8, initial: int = 4, beta: float = 0.5, weight: float = 0.2,
                 entropy_tokens: int = 20, rule: str = "paper", beam: int = 2, seed: int = 0):
        super().__init__(budget, seed)
        self.budget, self.initial, self.beta, self.weight = budget, initial, beta, weight
        self.entropy_tokens, self.rule, self.beam = entropy_tokens, rule, beam
        self.rng = np.random.default_rng(seed)

    def begin(self, tasks: int, iteration: int) -> None:
        self.leaves = [self.initial] * tasks
        self.initial_entropy: dict[str, float] = {}   # tree id -> entropy of its first reply
        self.decisions: list[tuple[float, bool]] = []  # (ΔH, branched), for metrics

    def initial_chains(self, task: int) -> int:
        return self.initial

    def entropy(self, entropies) -> float:
        head = list(entropies)[:self.entropy_tokens]
        return float(np.mean(head)) if head else 0.0

    def after_generate(self, generated):
        forks = []
        for x, completion in generated:
            h = self.entropy(completion.entropies)
            tree = x.episode.root_id
            if not x.episode.steps and x.episode.parent_id is None:
                self.initial_entropy[tree] = h   # the chain's first reply: its baseline
                continue
            if tree not in self.initial_entropy or not x.episode.steps:
                continue
            room = self.budget - self.leaves[x.task_index]
            if room <= 0:
                continue
            dh = h - self.initial_entropy[tree]
            if self.rule == "official":
                branch = bool(arpo_official_branch(self.rng.random(), dh, self.beta, self.weight))
                children = min(self.beam, room) if branch else 0
            else:
                p = float(arpo_branch_probability(dh, self.beta, self.weight))
                children = int(self.rng.random() < p)
            self.decisions.append((dh, children > 0))
            self.leaves[x.task_index] += children
            forks += [Fork(x, len(x.episode.steps))] * children
        return forks

    def when_idle(self, episodes):
        refill = []
        for t in range(len(self.leaves)):
            missing = self.budget - self.leaves[t]
            refill += [NewChain(t)] * missing
            self.leaves[t] = self.budget
        return refill

    def metrics(self):
        if not self.decisions:
            return {}
        dh = np.array([d for d, _ in self.decisions])
        return {"rollout/arpo_branch_rate": float(np.mean([b for _, b in self.decisions])),
                "rollout/arpo_entropy_delta_mean": float(dh.mean())}
