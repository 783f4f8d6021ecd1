"""SALT (algos/salt.py): the ALGORITHMS.md example and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.algos.grpo import grpo_advantages
from agentgym.algos.salt import salt_advantages, transition_nodes


def test_worked_example():
    a = grpo_advantages([1, 1, 0, 0], [0, 0, 0, 0])
    np.testing.assert_allclose(a, [0.866, 0.866, -0.866, -0.866], atol=1e-3)
    labels = "a b c a d c a b e f d e".split()
    ep = np.repeat(np.arange(4), 3)
    out = salt_advantages(a[ep], ep, transition_nodes(["g"] * 12, labels)).reshape(4, 3)
    expected = [[0.2887, 0, 0.866], [0.2887, 0, 0.866], [0.2887, 0, -0.866], [-0.866, 0, -0.866]]
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_a_trajectory_looping_through_a_node_counts_once():
    # traj 0 visits node "x" twice; traj 1 once: mean over trajectories = (1 + -1) / 2
    ep = [0, 0, 1]
    out = salt_advantages([1.0, 1.0, -1.0], ep, transition_nodes(["g"] * 3, ["x", "x", "x"]))
    np.testing.assert_allclose(out, [0, 0, 0])


def test_shapes_checked():
    with pytest.raises(ValueError):
        salt_advantages([1.0], [0, 1], [0])
    assert salt_advantages([], [], np.zeros(0, dtype=int)).shape == (0,)


@st.composite
def groups_of_paths(draw):
    n_groups = draw(st.integers(1, 3))
    keys, eps, groups, rets = [], [], [], []
    ep = 0
    for g in range(n_groups):
        for _ in range(draw(st.integers(1, 4))):
            for _t in range(draw(st.integers(1, 4))):
                keys.append(draw(st.sampled_from(["a", "b", "c", "d"])))
                eps.append(ep)
                groups.append(f"g{g}")
            rets.append(draw(st.sampled_from([0.0, 1.0, 0.5])))
            ep += 1
    eps = np.array(eps)
    a = grpo_advantages(rets, [groups[np.flatnonzero(eps == e)[0]] for e in range(ep)])
    return a[eps], eps, np.array(groups), np.array(keys)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.lists(st.sampled_from("abc"), min_size=1, max_size=5))
def test_identical_trajectories_give_zeros(n, path):
    ep = np.repeat(np.arange(n), len(path))
    a = grpo_advantages(np.zeros(n), np.zeros(n))[ep]      # identical paths, identical returns
    out = salt_advantages(a, ep, transition_nodes(["g"] * ep.size, path * n))
    np.testing.assert_array_equal(out, 0.0)
    # identical paths with different returns: every node is shared by all -> mean -> 0
    a = grpo_advantages(np.arange(n, dtype=float), np.zeros(n))[ep]
    out = salt_advantages(a, ep, transition_nodes(["g"] * ep.size, path * n))
    np.testing.assert_allclose(out, 0.0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(groups_of_paths(), st.randoms(use_true_random=False))
def test_permuting_trajectories_permutes_advantages(batch, rnd):
    a, ep, g, k = batch
    out = salt_advantages(a, ep, transition_nodes(g, k))
    order = list(range(ep.max() + 1))
    rnd.shuffle(order)
    idx = np.concatenate([np.flatnonzero(ep == e) for e in order])
    perm = salt_advantages(a[idx], ep[idx], transition_nodes(g[idx], k[idx]))
    np.testing.assert_allclose(perm, out[idx], atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(groups_of_paths())
def test_nothing_leaks_across_groups(batch):
    a, ep, g, k = batch
    out = salt_advantages(a, ep, transition_nodes(g, k))
    for name in np.unique(g):
        m = g == name
        np.testing.assert_allclose(out[m], salt_advantages(a[m], ep[m], transition_nodes(g[m], k[m])),
                                   atol=1e-12)
