"""Episode-level advantages (algos/grpo.py) against hand-worked examples and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.algos.grpo import episode_advantages, grpo_advantages, rloo_advantages

# --- GRPO: worked examples from shared/ALGORITHMS.md ----------------------------------


def test_grpo_two_trajectories():
    # mean 0.5, unbiased std 0.7071 -> +-0.5 / 0.7071 = +-0.7071
    a = grpo_advantages(np.array([1.0, 0.0]), np.array([0, 0]))
    np.testing.assert_allclose(a, [0.7071, -0.7071], atol=1e-4)
    assert a.dtype == np.float64


def test_grpo_arpo_replay_example():
    # ARPO: 8 rollouts, one replayed success -> [2.4749, -0.3536 x 7]
    a = grpo_advantages([1, 0, 0, 0, 0, 0, 0, 0], ["task"] * 8)
    np.testing.assert_allclose(a, [2.4749] + [-0.3536] * 7, atol=1e-4)


def test_grpo_salt_rewards():
    # SALT example rewards [1,1,0,0] -> +-0.866 (std = sqrt(1/3))
    a = grpo_advantages([1, 1, 0, 0], [0, 0, 0, 0])
    np.testing.assert_allclose(a, [0.866, 0.866, -0.866, -0.866], atol=1e-3)


def test_grpo_tree_grpo_two_level_example():
    # Tree-GRPO: GRPO over the prompt's leaves + GRPO within each leaf's tree
    rewards = np.array([1, 0, 0, 1, 1, 0], dtype=float)
    prompt = np.zeros(6, dtype=int)
    tree = np.array([1, 1, 1, 2, 2, 2])
    a = grpo_advantages(rewards, prompt) + grpo_advantages(rewards, tree)
    np.testing.assert_allclose(
        a, [2.0676, -1.4902, -1.4902, 1.4902, 1.4902, -2.0676], atol=1e-4
    )


def test_grpo_no_std():
    a = grpo_advantages([3.0, 1.0, 2.0], [0, 0, 0], normalize="none")
    np.testing.assert_allclose(a, [1.0, -1.0, 0.0])


def test_grpo_eps_and_all_equal_group():
    # all-equal group: std 0, so A = 0 / eps = 0
    np.testing.assert_allclose(grpo_advantages([0.3, 0.3, 0.3], [1, 1, 1]), 0.0, atol=1e-9)
    # eps enters the denominator: [2, 0] has std sqrt(2), A = 1 / (sqrt(2) + eps)
    a = grpo_advantages([2.0, 0.0], [0, 0], eps=0.5)
    np.testing.assert_allclose(a, [1 / (np.sqrt(2) + 0.5), -1 / (np.sqrt(2) + 0.5)])


def test_grpo_interleaved_groups_and_string_labels():
    r = np.array([1.0, 5.0, 0.0, 7.0, 9.0])
    g = np.array(["a", "b", "a", "b", "c"])
    a = grpo_advantages(r, g)
    np.testing.assert_allclose(a, [0.7071, -0.7071, -0.7071, 0.7071, 0.0], atol=1e-4)


@pytest.mark.parametrize("normalize", ["std", "none"])
def test_groups_of_one_are_zero(normalize):
    a = grpo_advantages([5.0, -3.0, 1.0], [0, 1, 2], normalize=normalize)
    np.testing.assert_array_equal(a, 0.0)
    np.testing.assert_array_equal(rloo_advantages([5.0, -3.0, 1.0], [0, 1, 2]), 0.0)


def test_grpo_counts_statistics_over_step_samples():
    # Trajectory A (R=1) has 3 steps, B (R=0) has 1 step -> samples [1,1,1,0]:
    # mean 0.75, unbiased std 0.5 -> A = 0.25/0.5 = 0.5, B = -0.75/0.5 = -1.5
    a = grpo_advantages([1.0, 0.0], [0, 0], counts=np.array([3, 1]))
    np.testing.assert_allclose(a, [0.5, -1.5], atol=1e-5)
    # equal to repeating each trajectory counts[i] times
    rep = grpo_advantages([1.0, 1.0, 1.0, 0.0], [0, 0, 0, 0])
    np.testing.assert_allclose(a, rep[[0, 3]])
    # counts all 1 == the default
    np.testing.assert_allclose(
        grpo_advantages([1, 2, 4], [0, 0, 0], counts=np.ones(3, dtype=int)),
        grpo_advantages([1, 2, 4], [0, 0, 0]),
    )
    # one trajectory with many steps is still a group of one
    np.testing.assert_array_equal(grpo_advantages([3.0], [0], counts=np.array([5])), 0.0)


def test_empty_batch():
    assert grpo_advantages([], []).shape == (0,)
    assert rloo_advantages([], []).shape == (0,)


def test_input_errors():
    with pytest.raises(ValueError, match="normalize"):
        grpo_advantages([1.0, 0.0], [0, 0], normalize="max")
    with pytest.raises(ValueError, match="one label per trajectory"):
        grpo_advantages([1.0, 0.0], [0])
    with pytest.raises(ValueError, match="1-D"):
        grpo_advantages(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        rloo_advantages([np.nan, 0.0], [0, 0])
    with pytest.raises(ValueError, match="counts"):
        grpo_advantages([1.0, 0.0], [0, 0], counts=np.array([1.5, 1.0]))


# --- RLOO ----------------------------------------------------------------------------


def test_rloo_hand_examples():
    # [1, 0]: 1 - 0 = 1, 0 - 1 = -1
    np.testing.assert_allclose(rloo_advantages([1.0, 0.0], [0, 0]), [1.0, -1.0])
    # [1, 2, 6]: 1 - 4 = -3, 2 - 3.5 = -1.5, 6 - 1.5 = 4.5
    np.testing.assert_allclose(rloo_advantages([1.0, 2.0, 6.0], [0, 0, 0]), [-3.0, -1.5, 4.5])
    # ARPO rewards: 1 - 0 = 1; 0 - 1/7 each
    np.testing.assert_allclose(rloo_advantages([1] + [0] * 7, [0] * 8), [1.0] + [-1 / 7] * 7)
    # two interleaved groups + a singleton
    np.testing.assert_allclose(
        rloo_advantages([1.0, 10.0, 0.0, 20.0, 4.0], [0, 1, 0, 1, 2]), [1.0, -10.0, -1.0, 10.0, 0.0]
    )


def test_rloo_is_scaled_mean_baseline():
    r = np.array([0.2, 1.5, -0.7, 3.0])
    np.testing.assert_allclose(
        rloo_advantages(r, [0] * 4), 4 / 3 * grpo_advantages(r, [0] * 4, normalize="none")
    )


# --- dispatcher ----------------------------------------------------------------------


def test_dispatcher():
    r, g = [1.0, 0.0, 2.0, 2.0], [0, 0, 1, 1]
    np.testing.assert_array_equal(episode_advantages("grpo", r, g), grpo_advantages(r, g))
    np.testing.assert_array_equal(
        episode_advantages("grpo", r, g, normalize="none"), grpo_advantages(r, g, normalize="none")
    )
    np.testing.assert_array_equal(episode_advantages("rloo", r, g), rloo_advantages(r, g))
    with pytest.raises(ValueError, match="unknown episode advantage"):
        episode_advantages("ppo", r, g)
    with pytest.raises(ValueError, match="does not take"):
        episode_advantages("rloo", r, g, normalize="std")


# --- properties ----------------------------------------------------------------------

# returns on a 1/4 grid keep sums exact, so properties hold to tight tolerances
_returns = st.integers(-40, 40).map(lambda k: k / 4)
_batch = st.lists(st.tuples(_returns, st.integers(0, 4)), min_size=1, max_size=24)
_FNS = [
    lambda r, g: grpo_advantages(r, g),
    lambda r, g: grpo_advantages(r, g, normalize="none"),
    rloo_advantages,
]


@settings(max_examples=60, deadline=None)
@given(batch=_batch, data=st.data())
def test_permuting_trajectories_permutes_advantages(batch, data):
    r = np.array([b[0] for b in batch])
    g = np.array([b[1] for b in batch])
    perm = np.array(data.draw(st.permutations(range(len(batch)))))
    for fn in _FNS:
        np.testing.assert_allclose(fn(r[perm], g[perm]), fn(r, g)[perm], atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(batch=_batch, shift=_returns, group=st.integers(0, 4))
def test_shifting_one_group_changes_nothing(batch, shift, group):
    # adding a constant to one group's returns leaves every advantage unchanged:
    # that group's (shift invariance) and all the others' (no leakage between groups)
    r = np.array([b[0] for b in batch])
    g = np.array([b[1] for b in batch])
    r2 = r + shift * (g == group)
    for fn in _FNS:
        np.testing.assert_allclose(fn(r2, g), fn(r, g), atol=1e-8)


@settings(max_examples=60, deadline=None)
@given(batch=_batch, new=st.lists(_returns, min_size=24, max_size=24), group=st.integers(0, 4))
def test_other_groups_unaffected(batch, new, group):
    # arbitrary changes inside one group never move another group's advantages
    r = np.array([b[0] for b in batch])
    g = np.array([b[1] for b in batch])
    r2 = np.where(g == group, np.array(new[: len(r)]), r)
    others = g != group
    for fn in _FNS:
        np.testing.assert_allclose(fn(r2, g)[others], fn(r, g)[others], atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(batch=_batch)
def test_group_structure(batch):
    r = np.array([b[0] for b in batch])
    g = np.array([b[1] for b in batch])
    a_std = grpo_advantages(r, g)
    a_none = grpo_advantages(r, g, normalize="none")
    a_rloo = rloo_advantages(r, g)
    for label in np.unique(g):
        m = g == label
        # advantages are centred within every group
        for a in (a_std, a_none, a_rloo):
            assert abs(a[m].sum()) < 1e-9
        # a group of >= 2 distinct returns has unbiased std 1 after normalisation (up to eps)
        if m.sum() >= 2 and np.ptp(r[m]) > 0:
            assert abs(np.std(a_std[m], ddof=1) - 1.0) < 1e-4
        # a group with a single trajectory gets 0
        if m.sum() == 1:
            assert a_std[m][0] == a_none[m][0] == a_rloo[m][0] == 0.0
