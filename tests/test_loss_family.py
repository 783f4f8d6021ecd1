"""The loss family on the worked examples of docs/algorithms.md (pure functions)."""

import difflib

import numpy as np
import pytest
import torch

from agentgym.algos.gigpo import step_groups
from agentgym.algos.ppo import (aggregate, kl_penalty, ppo_clip_loss, rollout_correction_weights,
                                sequence_log_ratio)
from agentgym.algos.rewards import format_reward, overlong_penalty


def test_aggregations_worked_example():
    """Token losses [1, 2] and [3], L_max = 4."""
    loss = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    assert float(aggregate(loss, mask, "token_mean")) == pytest.approx(2.0)
    assert float(aggregate(loss, mask, "seq_mean_token_mean")) == pytest.approx(2.25)
    assert float(aggregate(loss, mask, "seq_mean_token_sum_norm", norm_length=4)) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="norm_length"):
        aggregate(loss, mask, "seq_mean_token_sum_norm")


def test_gspo_sequence_ratio_worked_example():
    """eps = 0.2: seq 1 log-ratios [0.1, -0.1, 0.3], A = +1; seq 2 [0.5, 0.5], A = -1."""
    log_ratio = torch.tensor([0.1, -0.1, 0.3, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    rows = torch.tensor([0, 0, 0, 1, 1])
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    seq = sequence_log_ratio(log_ratio, torch.zeros(5, dtype=torch.float64), rows, 2)
    tok, _ = ppo_clip_loss(seq, torch.zeros_like(seq), adv, torch.ones(5), clip_low=0.2,
                           clip_high=0.2, dual_clip=None)
    per_seq = [float(tok[:3].detach().mean()), float(tok[3:].detach().mean())]
    assert per_seq == pytest.approx([-1.10517, 1.64872], abs=1e-5)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    padded = torch.zeros(2, 3, dtype=torch.float64)
    padded[mask.bool()] = tok
    total = aggregate(padded, mask, "seq_mean_token_mean")
    assert float(total) == pytest.approx(0.27178, abs=1e-5)
    total.backward()
    # the gradient reaches every token through its sequence's mean: d(L_i / 2)/dx_t =
    # -A s_i / (2 |y_i|); seq 2 (A < 0, s above the range) is not clipped (pessimistic max)
    assert log_ratio.grad[:3].tolist() == pytest.approx([-1.10517 / 6] * 3, abs=1e-5)
    assert log_ratio.grad[3:].tolist() == pytest.approx([1.64872 / 4] * 2, abs=1e-5)


def test_kl_estimators_worked_example():
    logp, ref = torch.tensor([-1.0]), torch.tensor([-1.5])
    assert float(kl_penalty(logp, ref, "k1")) == pytest.approx(0.5)
    assert float(kl_penalty(logp, ref, "k2")) == pytest.approx(0.125)
    assert float(kl_penalty(logp, ref, "k3")) == pytest.approx(0.10653, abs=1e-5)


def test_tis_and_mis_worked_example():
    """C = 2, w = [0.5, 1.5, 3.0]."""
    behaviour = torch.zeros(3)
    old = torch.log(torch.tensor([0.5, 1.5, 3.0]))
    assert rollout_correction_weights(old, behaviour, "tis", 2.0).tolist() == pytest.approx([0.5, 1.5, 2.0])
    assert rollout_correction_weights(old, behaviour, "mis", 2.0).tolist() == pytest.approx([0.5, 1.5, 0.0])
    assert rollout_correction_weights(old, behaviour, "none").tolist() == [1.0, 1.0, 1.0]


def test_overlong_penalty_worked_example():
    """L_max 20, L_c 4: |y| = 16 -> 0, 18 -> -0.5, 20 -> -1 (and beyond: -1)."""
    assert overlong_penalty([10, 16, 18, 20, 25], 20, 4).tolist() == pytest.approx([0, 0, -0.5, -1, -1])
    assert overlong_penalty([20], 20, 0).tolist() == [0.0]


def test_format_reward():
    assert format_reward([True, False], 0.5).tolist() == [0.0, -0.5]


ALFWORLD = ("-= Welcome to TextWorld, ALFRED! =- You are in the middle of a room. Looking "
            "quickly around you, you see a cabinet 4, a cabinet 3, a cabinet 2, a cabinet 1, a "
            "coffeemachine 1, a countertop 1, a diningtable 1, a drawer 1, a fridge 1, a "
            "garbagecan 1, a microwave 1, a shelf 3, a shelf 2, a shelf 1, a sinkbasin 1.")


def test_similarity_uses_difflibs_default_autojunk():
    """One object changed in a 311-character description: the reference (autojunk on)
    scores it well below autojunk off, and groups it differently at 0.95."""
    other = ALFWORLD.replace("a drawer 1", "a drawer 2")
    # the reference: SequenceMatcher(None, new observation, cluster representative)
    assert len(ALFWORLD) > 200
    reference = difflib.SequenceMatcher(None, other, ALFWORLD).ratio()
    no_junk = difflib.SequenceMatcher(None, other, ALFWORLD, autojunk=False).ratio()
    assert reference < 0.95 <= no_junk
    default = step_groups(["g", "g"], [ALFWORLD, other], match="similarity", threshold=0.95)
    assert default[0] != default[1]                          # the reference's grouping
    off = step_groups(["g", "g"], [ALFWORLD, other], match="similarity", threshold=0.95,
                      autojunk=False)
    assert off[0] == off[1]
    # the threshold is compared with the very ratio the reference computes
    between = step_groups(["g", "g"], [ALFWORLD, other], match="similarity",
                          threshold=float(np.nextafter(reference, 0)))
    assert between[0] == between[1]
