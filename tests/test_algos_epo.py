"""EPO (algos/epo.py): the ALGORITHMS.md example, weights, gradients, history state."""

import math

import numpy as np
import pytest
import torch

from agentgym.algos.epo import (EntropyHistory, epo_loss, epo_terms, phase_weight,
                                smoothing_penalty, turn_token_weights)


def test_worked_example():
    history = EntropyHistory([1.0, 0.8, 0.6])
    assert history.reference() == pytest.approx(0.8)
    H = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(smoothing_penalty(H, 0.8), torch.tensor([0, 0, 0.4, 1.4], dtype=torch.float64))
    w = torch.from_numpy(np.repeat(turn_token_weights([4], ["t"]), 4))
    l_h, l_smooth = epo_terms(H, w, history.reference(), alpha=0.1)
    assert float(l_h) == pytest.approx(1.625)
    assert float(l_smooth) == pytest.approx(0.045)
    beta = phase_weight(0, 150)
    assert beta == 2.0
    assert float(l_h - beta * l_smooth) == pytest.approx(1.535)
    assert float(epo_loss(l_h, l_smooth, beta, 0.001)) == pytest.approx(-0.001535)


def test_phase_weight_schedule():
    assert phase_weight(75, 150) == pytest.approx(1 + math.exp(-3))
    assert phase_weight(150, 150) == pytest.approx(1 + math.exp(-6))
    assert phase_weight(3, 1) == pytest.approx(1 + math.exp(-9))      # k_mid at least 1
    with pytest.raises(ValueError):
        phase_weight(-1, 10)


def test_no_smoothing_without_history():
    H = torch.tensor([5.0, 0.0])
    l_h, l_smooth = epo_terms(H, torch.tensor([0.5, 0.5]), EntropyHistory().reference())
    assert float(l_h) == 2.5 and float(l_smooth) == 0.0


def test_turn_weights_average_per_turn_then_trajectory_then_batch():
    # traj A: turns of 2 and 1 tokens; traj B: one turn of 4 tokens; an empty turn
    w = turn_token_weights([2, 1, 4, 0], ["A", "A", "B", "B"])
    np.testing.assert_allclose(w, [1 / 8, 1 / 4, 1 / 8, 0])
    lengths = np.array([2, 1, 4, 0])
    assert (w * lengths).sum() == pytest.approx(1.0)
    # per turn: mean entropies 1, 3 (A) and 2 (B) -> per traj 2 and 2 -> batch 2
    H = torch.tensor([0.0, 2.0, 3.0, 2.0, 2.0, 2.0, 2.0], dtype=torch.float64)
    l_h, _ = epo_terms(H, torch.from_numpy(np.repeat(w, lengths)), None)
    assert float(l_h) == pytest.approx(2.0)
    np.testing.assert_array_equal(turn_token_weights([0], ["A"]), [0.0])


def test_penalty_gradient_paper_vs_code_variant():
    def grad(penalty_grad):
        H = torch.tensor([0.5, 3.0], requires_grad=True)
        l_h, l_smooth = epo_terms(H, torch.tensor([0.5, 0.5]), 1.0, penalty_grad=penalty_grad)
        epo_loss(l_h, l_smooth, beta=2.0, coef=1.0).backward()
        return H.grad
    # loss = -(L_H - 2 L_smooth): dL/dH = -w + 2 alpha w [H > 2]
    torch.testing.assert_close(grad(True), torch.tensor([-0.5, -0.5 + 2 * 0.1 * 0.5]))
    torch.testing.assert_close(grad(False), torch.tensor([-0.5, -0.5]))


def test_history_state_roundtrip():
    h = EntropyHistory()
    h.append(1.0)
    h.append(np.float32(0.5))
    restored = EntropyHistory()
    restored.load_state_dict(h.state_dict())
    assert restored.values == [1.0, 0.5] and restored.reference() == 0.75
    restored.load_state_dict({})
    assert restored.reference() is None


def test_updater_weights_turns_of_trajectory_and_step_samples():
    from agentgym.samples import Sample
    from agentgym.update import epo_sample_weights

    def sample(ep, mask):
        return Sample(input_ids=[0] * len(mask), loss_mask=mask, advantages=[0.0] * len(mask),
                      behaviour_logprobs=[0.0] * len(mask), episode_id=ep, step=-1)
    # episode A as one trajectory sample with two turns (2 and 1 tokens); episode B as
    # two per-step samples (4 tokens, 1 token)
    w = epo_sample_weights([sample("A", [0, 1, 1, 0, 0, 1]), sample("B", [0, 1, 1, 1, 1]),
                            sample("B", [0, 0, 1])])
    np.testing.assert_allclose(w[0], [0, 1 / 8, 1 / 8, 0, 0, 1 / 4])
    np.testing.assert_allclose(w[1], [0, 1 / 16, 1 / 16, 1 / 16, 1 / 16])
    np.testing.assert_allclose(w[2], [0, 0, 1 / 4])
    assert sum(x.sum() for x in w) == pytest.approx(1.0)
