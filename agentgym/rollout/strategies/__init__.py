"""Rollout strategies: which episodes to start and fork (see ``base``).

    chain       G independent episodes per task (today's GRPO rollouts)
    tree_grpo   Tree-GRPO: M trees, L rounds of N node expansions
    treepo      TreePO at turn level: paths fork every turn within a leaf budget
    arpo        ARPO's entropy-adaptive branching after environment observations
"""

from __future__ import annotations

from agentgym.rollout.strategies.arpo import ARPOBranching
from agentgym.rollout.strategies.base import Fork, NewChain, Strategy
from agentgym.rollout.strategies.tree_grpo import TreeGRPO
from agentgym.rollout.strategies.treepo import TreePO

STRATEGIES = ("chain", "tree_grpo", "treepo", "arpo")


def make_strategy(name: str, group_size: int, tree=None, arpo=None, seed: int = 0) -> Strategy:
    """The strategy ``rollout.strategy`` names, shaped by ``rollout.tree`` / ``rollout.arpo``."""
    if name == "chain":
        return Strategy(group_size, seed)
    if name == "tree_grpo":
        return TreeGRPO(tree.trees, tree.rounds, tree.expansions, tree.replacement, seed=seed)
    if name == "treepo":
        return TreePO(tree.width, tree.branch, tree.leaves, seed=seed)
    if name == "arpo":
        return ARPOBranching(arpo.budget, arpo.initial, arpo.beta, arpo.weight,
                             arpo.entropy_tokens, arpo.rule, arpo.beam, seed=seed)
    raise ValueError(f"unknown rollout strategy {name!r}: use one of {', '.join(STRATEGIES)}")


__all__ = ["ARPOBranching", "Fork", "NewChain", "STRATEGIES", "Strategy", "TreeGRPO", "TreePO",
           "make_strategy"]
