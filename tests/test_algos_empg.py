"""EMPG (algos/empg.py): the ALGORITHMS.md example and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.algos.empg import empg_advantages, step_entropy


def test_worked_example():
    res = empg_advantages([1, 1, 1, -1, -1], [0.2, 0.5, 0.8, 1.0, 0.4], [0, 0, 0, 1, 1])
    np.testing.assert_allclose(res.advantage, [1.2209, 0.7372, 0.3886, -0.8431, -1.5035], atol=1e-4)
    np.testing.assert_allclose(res.normalized_entropy, [0, 0.375, 0.75, 1, 0.25], atol=1e-7)
    assert res.bonus[2] == 0 and res.bonus[4] == 0          # last steps: no next step
    assert res.advantage.mean() == pytest.approx(0, abs=1e-12)


def test_parameters():
    base = empg_advantages([1, -1], [0.0, 1.0], [0, 1], zeta=0.0)
    # g = exp(-H~)/mean: [1, e^-1] / ((1 + e^-1)/2)
    g = np.array([1, np.exp(-1)]) / ((1 + np.exp(-1)) / 2)
    np.testing.assert_allclose(base.scale, g)
    np.testing.assert_allclose(base.advantage, g * [1, -1] - np.mean(g * [1, -1]))
    flat = empg_advantages([1, -1], [0.0, 1.0], [0, 1], k=0.0, zeta=0.0)
    np.testing.assert_allclose(flat.advantage, [1, -1])     # k = 0: no modulation


def test_step_entropy_sources():
    np.testing.assert_allclose(step_entropy([[1.0, 3.0], [], [2.0]]), [2.0, 0.0, 2.0])
    np.testing.assert_allclose(step_entropy([[-1.0, -3.0]], source="logprob"), [2.0])
    with pytest.raises(ValueError, match="source"):
        step_entropy([[1.0]], source="bits")


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        empg_advantages([1.0], [np.nan], [0])
    with pytest.raises(ValueError, match="one entry per step"):
        empg_advantages([1.0, 2.0], [0.1], [0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(0, 5), st.integers(0, 3)), min_size=1, max_size=30))
def test_zero_mean_and_confidence_order(rows):
    rows.sort(key=lambda r: r[2])            # contiguous trajectories
    a, h, ep = map(np.array, zip(*rows))
    res = empg_advantages(a, h, ep)
    assert abs(res.advantage.mean()) < 1e-9
    assert np.all(res.scale > 0) and res.scale.mean() == pytest.approx(1.0)
    # lower entropy never gets a smaller scale
    order = np.argsort(h, kind="stable")
    assert np.all(np.diff(res.scale[order]) <= 1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 2), st.lists(st.floats(0, 5), min_size=1, max_size=4)),
                min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_permuting_trajectories_permutes_advantages(trajs, rnd):
    def flat(order):
        a = np.concatenate([[trajs[i][0]] * len(trajs[i][1]) for i in order])
        h = np.concatenate([trajs[i][1] for i in order])
        ep = np.concatenate([[i] * len(trajs[i][1]) for i in order])
        return a, h, ep
    order = list(range(len(trajs)))
    base = empg_advantages(*flat(order)).advantage
    rnd.shuffle(order)
    perm = empg_advantages(*flat(order)).advantage
    pieces = np.split(base, np.cumsum([len(t[1]) for t in trajs])[:-1])
    np.testing.assert_allclose(perm, np.concatenate([pieces[i] for i in order]), atol=1e-9)
