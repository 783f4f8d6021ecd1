"""Token-level losses (algos/ppo.py) against hand-computed values and torch references."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.algos.ppo import (
    entropy_from_logits,
    kl_low_var,
    logprobs_from_logits,
    masked_mean,
    ppo_clip_loss,
    token_mean,
)

D = torch.float64

# One row per case, clip_low 0.2, clip_high 0.28, dual clip 3:
#   (advantage, ratio, expected loss, clipped?)
CASES = [
    (1.0, 1.1, -1.1, False),    # unclipped: -A*rho
    (1.0, 1.5, -1.28, True),    # clipped high: A>0, rho > 1.28 -> -A*1.28
    (-1.0, 0.5, 0.8, True),     # clipped low: A<0, rho < 0.8 -> -A*0.8
    (-1.0, 4.0, 3.0, True),     # dual clip: A<0, rho=4 -> max(4, 1.28)=4, min(4, 3)=3
    (-1.0, 2.0, 2.0, False),    # A<0, 1.28 < rho < 3: unclipped -A*rho
    (2.0, 0.5, -1.0, False),    # A>0, rho < 0.8: max(-1, -1.6) = -1, unclipped
    (5.0, 10.0, 0.0, False),    # masked out (last column): contributes nothing
]


def _case_tensors():
    adv = torch.tensor([[c[0] for c in CASES]], dtype=D)
    ratio = torch.tensor([[c[1] for c in CASES]], dtype=D)
    old = torch.full_like(ratio, -1.5)
    logp = (old + ratio.log()).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    return logp, old, adv, mask


def test_ppo_clip_loss_hand_example():
    logp, old, adv, mask = _case_tensors()
    loss, stats = ppo_clip_loss(logp, old, adv, mask)
    expected = torch.tensor([[c[2] for c in CASES]], dtype=D)
    torch.testing.assert_close(loss.detach(), expected)
    # token mean over the 6 trained tokens: (-1.1 - 1.28 + 0.8 + 3 + 2 - 1) / 6
    total = token_mean(loss, mask)
    assert total.item() == pytest.approx(2.42 / 6)

    assert stats["clip_frac"].item() == pytest.approx(3 / 6)
    assert stats["clip_frac_high"].item() == pytest.approx(1 / 6)
    assert stats["clip_frac_low"].item() == pytest.approx(1 / 6)
    assert stats["dual_clip_frac"].item() == pytest.approx(1 / 6)
    ratios = [1.1, 1.5, 0.5, 4.0, 2.0, 0.5]
    assert stats["ratio_mean"].item() == pytest.approx(sum(ratios) / 6)
    assert stats["ratio_max"].item() == pytest.approx(4.0)
    assert stats["ratio_min"].item() == pytest.approx(0.5)
    k3 = sum(r - 1 - math.log(r) for r in ratios) / 6
    k1 = sum(-math.log(r) for r in ratios) / 6
    assert stats["approx_kl"].item() == pytest.approx(k3)
    assert stats["approx_kl_k1"].item() == pytest.approx(k1)
    assert all(not v.requires_grad and v.dim() == 0 for v in stats.values())

    # gradient w.r.t. logp of the token mean: d(-A rho)/dlogp = -A rho on unclipped
    # tokens, exactly 0 on clipped and masked ones
    total.backward()
    grad = logp.grad[0]
    for t, (a, r, _, clipped) in enumerate(CASES):
        if clipped or not mask[0, t]:
            assert grad[t].item() == 0.0, t
        else:
            assert grad[t].item() == pytest.approx(-a * r / 6), t


def test_dual_clip_disabled():
    logp, old, adv, mask = _case_tensors()
    loss, stats = ppo_clip_loss(logp, old, adv, mask, dual_clip=None)
    assert loss[0, 3].item() == pytest.approx(4.0)   # no cap at -c*A = 3
    assert stats["dual_clip_frac"].item() == 0.0
    assert stats["clip_frac"].item() == pytest.approx(2 / 6)


def test_custom_clip_range():
    adv = torch.tensor([[1.0, -1.0]], dtype=D)
    ratio = torch.tensor([[1.5, 0.5]], dtype=D)
    old = torch.zeros_like(ratio)
    loss, _ = ppo_clip_loss(ratio.log(), old, adv, torch.ones_like(adv), clip_low=0.3, clip_high=0.3)
    torch.testing.assert_close(loss, torch.tensor([[-1.3, 0.7]], dtype=D))


def test_on_policy_loss_is_minus_advantage_and_kl_zero():
    # first PPO epoch: logp == old, rho = 1, L = -A; gradient -A (policy-gradient)
    torch.manual_seed(0)
    old = torch.randn(3, 5, dtype=D)
    logp = old.clone().requires_grad_(True)
    adv = torch.randn(3, 5, dtype=D)
    mask = torch.rand(3, 5) > 0.3
    loss, stats = ppo_clip_loss(logp, old, adv, mask)
    torch.testing.assert_close(loss, torch.where(mask, -adv, 0.0))
    assert stats["clip_frac"].item() == 0.0
    assert stats["approx_kl"].item() == 0.0 and stats["ratio_mean"].item() == pytest.approx(1.0)
    loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.where(mask, -adv, 0.0))


def test_masked_garbage_does_not_leak():
    # padding with -inf / NaN log-probs and NaN advantages: loss and grads stay finite
    logp = torch.tensor([[-1.0, float("-inf"), float("nan")]], requires_grad=True)
    old = torch.tensor([[-1.2, -1.0, float("nan")]])
    adv = torch.tensor([[1.0, float("nan"), 3.0]])
    mask = torch.tensor([[1.0, 0.0, 0.0]])
    loss, stats = ppo_clip_loss(logp, old, adv, mask)
    total = token_mean(loss, mask)
    total.backward()
    assert torch.isfinite(loss).all() and torch.isfinite(logp.grad).all()
    assert loss[0, 1:].abs().sum() == 0 and logp.grad[0, 1:].abs().sum() == 0
    assert all(torch.isfinite(v) for v in stats.values())


def test_empty_mask():
    logp = torch.zeros(2, 3, requires_grad=True)
    mask = torch.zeros(2, 3, dtype=torch.bool)
    loss, stats = ppo_clip_loss(logp, torch.zeros(2, 3), torch.ones(2, 3), mask)
    total = token_mean(loss, mask)
    total.backward()
    assert total.item() == 0.0 and logp.grad.abs().sum() == 0
    assert all(v.item() == 0.0 for v in stats.values())
    # zero-size batch
    e = torch.zeros(0, 3)
    loss, stats = ppo_clip_loss(e, e, e, e.bool())
    assert loss.shape == (0, 3) and all(v.item() == 0.0 for v in stats.values())


def test_argument_errors():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="same shape"):
        ppo_clip_loss(x, x, torch.zeros(2, 4), x)
    with pytest.raises(ValueError, match="dual_clip"):
        ppo_clip_loss(x, x, x, x, dual_clip=1.0)


@settings(max_examples=50, deadline=None)
@given(
    vals=st.lists(
        st.tuples(st.floats(-3, 3), st.floats(-3, 3), st.booleans()), min_size=1, max_size=20
    )
)
def test_gradient_zero_exactly_where_clipped(vals):
    adv = torch.tensor([[v[0] for v in vals]], dtype=D)
    logp = torch.tensor([[v[1] for v in vals]], dtype=D, requires_grad=True)
    mask = torch.tensor([[v[2] for v in vals]])
    old = torch.zeros_like(adv)
    loss, _ = ppo_clip_loss(logp, old, adv, mask)
    loss.sum().backward()
    rho = logp.detach().exp()
    clipped = ((adv > 0) & (rho > 1.28)) | ((adv < 0) & (rho < 0.8)) | ((adv < 0) & (rho > 3.0))
    active = mask & ~clipped
    assert (logp.grad[~active] == 0).all()
    torch.testing.assert_close(logp.grad[active], (-adv * rho)[active])


# --- aggregation -----------------------------------------------------------------------


def test_token_mean_and_masked_mean():
    v = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert token_mean(v, m).item() == pytest.approx(7 / 3)   # (1 + 2 + 4) / 3, not mean of rows
    torch.testing.assert_close(masked_mean(v, m, dim=1), torch.tensor([1.5, 4.0]))
    torch.testing.assert_close(masked_mean(v, m.bool(), dim=0), torch.tensor([2.5, 2.0, 0.0]))
    assert token_mean(v, torch.zeros_like(m)).item() == 0.0
    # float weights
    assert token_mean(v, m * 0.5).item() == pytest.approx(7 / 3)


# --- KL ------------------------------------------------------------------------------


def test_kl_low_var():
    logp = torch.tensor([-1.0, -0.5, -2.0, -3.0, 0.0])
    assert kl_low_var(logp, logp).abs().max().item() == 0.0
    # logp -1.0, ref -1.2: exp(-0.2) + 0.2 - 1 = 0.018731
    assert kl_low_var(torch.tensor([-1.0]), torch.tensor([-1.2])).item() == pytest.approx(
        math.exp(-0.2) + 0.2 - 1, rel=1e-5
    )
    # always >= 0; clamped at 10 for huge log-ratios (ref much more likely than policy)
    ref = torch.tensor([-1.0, -0.4, -30.0, 40.0, -0.1])
    k = kl_low_var(logp, ref)
    assert (k >= 0).all() and k.max().item() == 10.0
    # differentiable w.r.t. logp, ref treated as constant; d/dlogp = 1 - exp(ref - logp)
    lp = torch.tensor([-1.0, -2.0], dtype=D, requires_grad=True)
    rf = torch.tensor([-1.5, -1.0], dtype=D, requires_grad=True)
    kl_low_var(lp, rf).sum().backward()
    torch.testing.assert_close(lp.grad, 1 - torch.exp(rf.detach() - lp.detach()))
    assert rf.grad is None


# --- entropy and log-probs -----------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 1024])
def test_entropy_from_logits_matches_direct_formula(chunk_size):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, dtype=D) * 3
    p = torch.softmax(logits, -1)
    direct = -(p * torch.log(p)).sum(-1)
    h = entropy_from_logits(logits, chunk_size=chunk_size)
    assert h.shape == (2, 5) and h.dtype == D
    torch.testing.assert_close(h, direct)
    torch.testing.assert_close(h, torch.distributions.Categorical(logits=logits).entropy())


def test_entropy_special_cases_and_stability():
    uniform = torch.zeros(1, 1, 49)
    assert entropy_from_logits(uniform).item() == pytest.approx(math.log(49), rel=1e-6)
    # near one-hot and huge logits (cancellation-prone without the max shift)
    big = torch.tensor([[1e4, 1e4 - 1.0, 0.0, -1e4]])
    p1 = 1 / (1 + math.exp(-1))
    expect = -(p1 * math.log(p1) + (1 - p1) * math.log(1 - p1))
    assert entropy_from_logits(big).item() == pytest.approx(expect, abs=1e-5)
    assert entropy_from_logits(torch.tensor([[50.0, -50.0, -50.0]])).item() == pytest.approx(0.0, abs=1e-6)
    # bf16 input is computed (and returned) in fp32
    h = entropy_from_logits(torch.randn(3, 7).to(torch.bfloat16))
    assert h.dtype == torch.float32 and torch.isfinite(h).all()


def test_entropy_fp32_accuracy_on_full_vocab():
    # SmolLM2's 49,152-token vocabulary in fp32 stays within 1e-5 of an fp64 reference
    torch.manual_seed(3)
    x = torch.randn(2, 4, 49152) * 3
    ref = torch.distributions.Categorical(logits=x.double()).entropy()
    torch.testing.assert_close(entropy_from_logits(x, chunk_size=3).double(), ref, atol=1e-5, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(entropy_from_logits(x).double(), ref, atol=1e-5, rtol=0)


def test_entropy_gradient_matches_reference():
    torch.manual_seed(1)
    x = torch.randn(4, 6, dtype=D, requires_grad=True)
    entropy_from_logits(x, chunk_size=3).sum().backward()
    g = x.grad.clone()
    x.grad = None
    torch.distributions.Categorical(logits=x).entropy().sum().backward()
    torch.testing.assert_close(g, x.grad)


@pytest.mark.parametrize("chunk_size", [1, 4, 1024])
def test_logprobs_from_logits_matches_categorical(chunk_size):
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 13, dtype=D) * 4
    labels = torch.randint(0, 13, (3, 4))
    lp = logprobs_from_logits(logits, labels, chunk_size=chunk_size)
    ref = torch.distributions.Categorical(logits=logits).log_prob(labels)
    assert lp.shape == (3, 4)
    torch.testing.assert_close(lp, ref)
    torch.testing.assert_close(
        lp, torch.log_softmax(logits, -1).gather(-1, labels[..., None]).squeeze(-1)
    )


def test_logprobs_from_logits_gradient_and_precision():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 9, dtype=D, requires_grad=True)
    y = torch.randint(0, 9, (2, 3))
    logprobs_from_logits(x, y, chunk_size=2).sum().backward()
    g = x.grad.clone()
    x.grad = None
    torch.log_softmax(x, -1).gather(-1, y[..., None]).sum().backward()
    torch.testing.assert_close(g, x.grad)
    # fp32 logits ~1e4: the top token's log-prob keeps full precision
    big = torch.tensor([[1e4, 1e4 - 1.0, 0.0]])
    lp = logprobs_from_logits(big, torch.tensor([0]))
    assert lp.item() == pytest.approx(-math.log1p(math.exp(-1)), abs=1e-6)
    # bf16 logits -> fp32 result
    assert logprobs_from_logits(torch.randn(2, 5).bfloat16(), torch.tensor([1, 2])).dtype == torch.float32


def test_logprobs_label_shape_error():
    with pytest.raises(ValueError, match="labels shape"):
        logprobs_from_logits(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
