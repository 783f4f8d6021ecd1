"""GiGPO (algos/gigpo.py): the ALGORITHMS.md example, options, and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.algos.gigpo import gigpo_advantages, step_group_advantages, step_groups
from agentgym.algos.grpo import grpo_advantages

# ALGORITHMS.md: group of 2, gamma = 1, rewards only at the end
REWARDS = [0, 0, 1, 0, 0, 0]
EPISODES = [1, 1, 1, 2, 2, 2]
ANCHORS = ["s0", "s1", "s2", "s0", "s3", "s1"]


def test_worked_example():
    res = gigpo_advantages(REWARDS, EPISODES, ["g"] * 6, ANCHORS, gamma=1.0)
    np.testing.assert_allclose(res.step_return, [1, 1, 1, 0, 0, 0])
    np.testing.assert_allclose(res.step, [0.5, 0.5, 0, -0.5, 0, -0.5])
    np.testing.assert_allclose(res.episode, [0.7071] * 3 + [-0.7071] * 3, atol=1e-4)
    np.testing.assert_allclose(res.advantage, res.episode + res.step)
    # step groups: s0 {t0, t3}, s1 {t1, t5}, s2 and s3 singletons
    g = res.step_group
    assert g[0] == g[3] and g[1] == g[5] and len({g[0], g[1], g[2], g[4]}) == 4


def test_omega_gamma_and_mean_std_norm():
    res = gigpo_advantages(REWARDS, EPISODES, ["g"] * 6, ANCHORS, gamma=0.5, omega=0.8,
                           normalize="mean_std_norm")
    np.testing.assert_allclose(res.step_return, [0.25, 0.5, 1, 0, 0, 0])
    # s0: returns {0.25, 0}: dev +-0.125, std (n-1) = 0.1768 -> +-0.7071
    np.testing.assert_allclose(res.step[[0, 3]], [0.7071, -0.7071], atol=1e-4)
    np.testing.assert_allclose(res.advantage, res.episode + 0.8 * res.step)


def test_invalid_penalty_is_not_discounted_backwards():
    r = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    pen = np.array([0, -0.1, 0, 0, 0, 0])      # traj 1, step 1 was invalid
    res = gigpo_advantages(r, [0, 0, 0, 1, 1, 1], ["g"] * 6, ["a", "b", "c", "a", "b", "c"],
                           gamma=1.0, undiscounted=pen)
    np.testing.assert_allclose(res.step_return, [1, 0.9, 1, 1, 1, 1])
    np.testing.assert_allclose(res.step, [0, -0.05, 0, 0, 0.05, 0])
    assert res.episode[0] < 0 < res.episode[3]     # the penalty enters the trajectory return


def test_episode_scope_step_weights_by_length():
    # traj a (3 steps, return 1), b (1 step, return 0): over step samples mean = 0.75
    r, ep = [0, 0, 1, 0], [0, 0, 0, 1]
    traj = gigpo_advantages(r, ep, ["g"] * 4, list("wxyz"), gamma=1.0)
    step = gigpo_advantages(r, ep, ["g"] * 4, list("wxyz"), gamma=1.0, episode_scope="step")
    np.testing.assert_allclose(traj.episode, [0.7071] * 3 + [-0.7071], atol=1e-4)
    expected = grpo_advantages([1.0, 0.0], [0, 0], counts=[3, 1])
    np.testing.assert_allclose(step.episode, np.repeat(expected, [3, 1]))
    assert not np.allclose(traj.episode, step.episode)
    with pytest.raises(ValueError, match="episode_scope"):
        gigpo_advantages(r, ep, ["g"] * 4, list("wxyz"), episode_scope="token")


def test_similarity_grouping():
    anchors = ["You are in the kitchen. A fridge.", "You are in the kitchen. A fridge!",
               "You are in the garden."]
    exact = step_groups(["g"] * 3, anchors)
    assert len(set(exact)) == 3
    similar = step_groups(["g"] * 3, anchors, match="similarity", threshold=0.95)
    assert similar[0] == similar[1] != similar[2]
    # never across groups, however similar
    assert len(set(step_groups(["g", "h"], anchors[:2], match="similarity"))) == 2
    with pytest.raises(ValueError, match="threshold"):
        step_groups(["g"], ["a"], match="similarity", threshold=0)
    with pytest.raises(ValueError, match="match"):
        step_groups(["g"], ["a"], match="fuzzy")


def test_singletons_and_empty():
    np.testing.assert_array_equal(step_group_advantages([3.0, 5.0], [0, 1]), [0, 0])
    res = gigpo_advantages([], [], [], [])
    assert res.advantage.shape == (0,)


# --- properties -------------------------------------------------------------------

@st.composite
def batches(draw, distinct_anchors=False):
    """Flat steps of several groups of trajectories; anchors from a small alphabet."""
    n_groups = draw(st.integers(1, 3))
    rewards, episodes, groups, anchors = [], [], [], []
    ep = 0
    for g in range(n_groups):
        for _ in range(draw(st.integers(1, 4))):
            length = draw(st.integers(1, 4))
            for t in range(length):
                rewards.append(draw(st.sampled_from([0.0, 0.0, 1.0, -0.1])))
                episodes.append(ep)
                groups.append(f"g{g}")
                anchors.append(f"u{len(anchors)}" if distinct_anchors
                               else draw(st.sampled_from(["a", "b", "c"])))
            ep += 1
    return np.array(rewards), np.array(episodes), np.array(groups), np.array(anchors)


@settings(max_examples=60, deadline=None)
@given(batches(distinct_anchors=True), st.sampled_from(["mean_norm", "mean_std_norm"]))
def test_distinct_anchors_reduce_to_episode_level(batch, normalize):
    res = gigpo_advantages(*batch, normalize=normalize)
    np.testing.assert_array_equal(res.step, 0.0)
    np.testing.assert_array_equal(res.advantage, res.episode)


@settings(max_examples=60, deadline=None)
@given(batches(), st.randoms(use_true_random=False))
def test_permuting_trajectories_permutes_advantages(batch, rnd):
    r, ep, g, a = batch
    res = gigpo_advantages(r, ep, g, a, gamma=0.9)
    order = list(range(ep.max() + 1))
    rnd.shuffle(order)
    idx = np.concatenate([np.flatnonzero(ep == e) for e in order])
    perm = gigpo_advantages(r[idx], ep[idx], g[idx], a[idx], gamma=0.9)
    np.testing.assert_allclose(perm.advantage, res.advantage[idx], atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(batches())
def test_nothing_leaks_across_groups(batch):
    r, ep, g, a = batch
    res = gigpo_advantages(r, ep, g, a, gamma=0.9, normalize="mean_std_norm")
    for name in np.unique(g):
        m = g == name
        alone = gigpo_advantages(r[m], ep[m], g[m], a[m], gamma=0.9, normalize="mean_std_norm")
        np.testing.assert_allclose(res.advantage[m], alone.advantage, atol=1e-12)


def test_factorize_labels():
    from agentgym.algos.labels import factorize
    codes = factorize(["a", "b", "a", "c"], [1, 1, 1, 1], np.array([0, 0, 0, 2]))
    assert codes[0] == codes[2] and len(set(codes)) == 3
    assert set(factorize(np.array([5.0, 3.0, 5.0]))) == {0, 1}
    assert factorize([]).shape == (0,)
    with pytest.raises(ValueError, match="length"):
        factorize(["a"], ["b", "c"])
