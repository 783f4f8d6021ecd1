"""Reward shaping (algos/rewards.py) against hand-worked examples."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.algos.rewards import discounted_returns, invalid_action_penalty


def test_invalid_action_penalty():
    r = np.array([0.0, 0.0, 1.0, 0.0])
    valid = np.array([True, False, True, False])
    out = invalid_action_penalty(r, valid)
    np.testing.assert_allclose(out, [0.0, -0.1, 1.0, -0.1])
    assert out.dtype == np.float64
    np.testing.assert_allclose(invalid_action_penalty(r, valid, penalty=0.5), [0, -0.5, 1, -0.5])
    np.testing.assert_allclose(invalid_action_penalty(r, [1, 0, 1, 0]), out)   # 0/1 accepted
    np.testing.assert_array_equal(r, [0.0, 0.0, 1.0, 0.0])   # input untouched
    with pytest.raises(ValueError, match="shape"):
        invalid_action_penalty(r, valid[:3])
    with pytest.raises(ValueError, match="boolean"):
        invalid_action_penalty(r, [1, 2, 1, 0])


def test_discounted_returns_gigpo_example():
    # ALGORITHMS.md GiGPO example, gamma = 1: traj1 rewards [0,0,1], traj2 [0,0,0]
    G = discounted_returns([0, 0, 1, 0, 0, 0], 1.0, [1, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(G, [1, 1, 1, 0, 0, 0])


def test_discounted_returns_hand_example():
    # gamma 0.5; trajectories "a" (3 steps), "b" (2 steps), "c" (1 step)
    r = [1.0, 0.0, 4.0, 2.0, 2.0, 5.0]
    G = discounted_returns(r, 0.5, ["a", "a", "a", "b", "b", "c"])
    # a: [1 + 0.5*0 + 0.25*4, 0 + 0.5*4, 4] = [2, 2, 4]; b: [2 + 1, 2]; c: [5]
    np.testing.assert_allclose(G, [2.0, 2.0, 4.0, 3.0, 2.0, 5.0])
    assert G.dtype == np.float64
    # gamma = 0.95, sparse final reward: 0.95^2, 0.95, 1
    np.testing.assert_allclose(discounted_returns([0, 0, 1], 0.95), [0.9025, 0.95, 1.0])
    # gamma = 0: each step's own reward
    np.testing.assert_allclose(discounted_returns(r, 0.0, [0, 0, 0, 1, 1, 2]), r)


def test_penalty_not_discounted_backwards():
    # invalid action at step 1 of a 3-step trajectory, success reward at the end
    r = np.array([0.0, 0.0, 1.0])
    shaped = invalid_action_penalty(r, [True, False, True])
    G = discounted_returns(r, 0.5, undiscounted=shaped - r)
    # step 0 is not charged for step 1's mistake; step 1 gets exactly -0.1
    np.testing.assert_allclose(G, [0.25, 0.5 - 0.1, 1.0])
    # whereas discounting the shaped rewards would propagate it: 0.25 - 0.05
    np.testing.assert_allclose(discounted_returns(shaped, 0.5)[0], 0.2)


def test_discounted_returns_edge_cases():
    assert discounted_returns([], 0.9).shape == (0,)
    np.testing.assert_allclose(discounted_returns([3.0], 0.9, [7]), [3.0])
    with pytest.raises(ValueError, match="contiguous"):
        discounted_returns([1, 2, 3], 0.9, [0, 1, 0])
    with pytest.raises(ValueError, match="gamma"):
        discounted_returns([1.0], 1.5)
    with pytest.raises(ValueError, match="one label per step"):
        discounted_returns([1.0, 2.0], 0.9, [0])
    with pytest.raises(ValueError, match="undiscounted"):
        discounted_returns([1.0, 2.0], 0.9, undiscounted=[1.0])


def _reference(rewards, gamma):
    """Straightforward per-trajectory loop, for the property test."""
    out = []
    for ep in rewards:
        g, acc = [], 0.0
        for x in reversed(ep):
            acc = x + gamma * acc
            g.append(acc)
        out.extend(reversed(g))
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(
    episodes=st.lists(st.lists(st.floats(-5, 5), min_size=1, max_size=12), min_size=1, max_size=8),
    gamma=st.floats(0, 1),
)
def test_discounted_returns_matches_loop(episodes, gamma):
    flat = np.concatenate([np.array(e) for e in episodes])
    ids = np.concatenate([np.full(len(e), i) for i, e in enumerate(episodes)])
    np.testing.assert_allclose(
        discounted_returns(flat, gamma, ids), _reference(episodes, gamma), rtol=1e-12, atol=1e-12
    )
