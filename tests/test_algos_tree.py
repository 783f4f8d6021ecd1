"""Tree-rollout math against the worked examples of ALGORITHMS.md."""

import numpy as np
import pytest

from agentgym.algos.tree import (arpo_branch_probability, arpo_official_branch, draw_nodes,
                                 shared_mean, tree_grpo_advantages, treepo_advantages)


def test_arpo_branch_probability_worked_example():
    p = arpo_branch_probability([-3, -0.5, 0, 0.4, 2.5], beta=0.5, weight=0.2)
    np.testing.assert_allclose(p, [0.0, 0.40, 0.50, 0.58, 1.0])


def test_arpo_official_rule_branches_with_the_same_probability():
    rng = np.random.default_rng(0)
    u = rng.random(200_000)
    for dh, p in [(-0.5, 0.4), (0.4, 0.58), (-3, 0.0)]:
        assert arpo_official_branch(u, dh).mean() == pytest.approx(p, abs=0.005)


def test_tree_grpo_worked_example():
    rewards = [1, 0, 0, 1, 1, 0]
    adv = tree_grpo_advantages(rewards, ["q"] * 6, [1, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(adv, [2.0676, -1.4902, -1.4902, 1.4902, 1.4902, -2.0676], atol=1e-4)


def test_tree_grpo_keeps_tasks_apart():
    adv = tree_grpo_advantages([1, 0, 5, 5], ["a", "a", "b", "b"], [0, 0, 0, 0])
    assert adv[2] == adv[3] == 0.0 and adv[0] > 0 > adv[1]


def test_treepo_worked_example():
    # root -> a (leaves 1, 0), b (leaves 0, 0); each leaf's own last node is unique
    paths = [("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2")]
    raw = treepo_advantages([1, 0, 0, 0], ["q"] * 4, paths, whiten=False)
    np.testing.assert_allclose(raw, [0.625, -0.375, -0.125, -0.125])
    white = treepo_advantages([1, 0, 0, 0], ["q"] * 4, paths)
    np.testing.assert_allclose(white, (raw - raw.mean()) / (raw.std(ddof=1) + 1e-6))


def test_treepo_leaves_of_different_depths():
    # leaf 2 stops after node a: at depth 2 it is absent, not a group of its own
    raw = treepo_advantages([1, 0, 1], ["q"] * 3, [("a", "x"), ("a", "y"), ("a",)], whiten=False)
    mean = 2 / 3
    np.testing.assert_allclose(raw, [1 - mean, 0 - mean, 1 - mean])


def test_shared_mean_is_the_mean_over_rows_of_a_node():
    np.testing.assert_allclose(shared_mean([1.0, 3.0, 5.0], ["n", "n", "m"]), [2.0, 2.0, 5.0])


def test_draw_nodes_with_and_without_replacement():
    rng = np.random.default_rng(0)
    assert len(draw_nodes(rng, 2, 5)) == 5
    without = draw_nodes(rng, 4, 3, replacement=False)
    assert len(set(without.tolist())) == 3
    assert len(draw_nodes(rng, 2, 5, replacement=False)) == 2
