"""The policy update with the tiny model: PPO epochs and mini-batches, pi_old, the lr
schedule over optimizer steps, the rollout correction, bf16 autocast."""

import math

import pytest
import torch

from agentgym.config import LossConfig
from agentgym.lr_schedule import LRSchedule
from agentgym.policy.models import load_model_and_tokenizer
from agentgym.precision import cpu_flags, native_bf16, resolve_precision
from agentgym.samples import Sample
from agentgym.update import PolicyUpdater


@pytest.fixture(scope="module")
def tiny():
    return load_model_and_tokenizer("tiny-smollm2")


def _model(tiny):
    model, _ = tiny
    torch.manual_seed(0)
    fresh = type(model)(model.config)
    fresh.load_state_dict(model.state_dict())
    return fresh


def _samples(n=8, prompt=12, response=6, vocab=200, seed=0, behaviour=0.0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids = torch.randint(3, vocab, (prompt + response,), generator=g).tolist()
        adv = 1.0 if i % 2 else -1.0
        out.append(Sample(ids, [0] * prompt + [1] * response, [0.0] * prompt + [adv] * response,
                          [0.0] * prompt + [behaviour] * response, f"e{i}", 0))
    return out


def _updater(model, lr=1e-2, schedule_iterations=None, **kw):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = LRSchedule(opt, iterations=schedule_iterations) if schedule_iterations else None
    loss = kw.pop("loss", LossConfig())
    return PolicyUpdater(model, opt, schedule, loss, temperature=1.0, pad_id=0, micro_batch=4, **kw)


def test_one_step_per_iteration_never_clips(tiny):
    m = _updater(_model(tiny)).step(_samples())
    assert m["actor/optimizer_steps"] == 1
    assert m["actor/clip_frac"] == 0.0 and m["actor/approx_kl"] == pytest.approx(0.0, abs=1e-12)


def test_clip_binds_with_two_epochs_on_a_fixed_batch(tiny):
    m = _updater(_model(tiny), ppo_epochs=2, mini_batch_size=4).step(_samples())
    assert m["actor/optimizer_steps"] == 4
    # pi_old is the policy before the first step: later steps see ratios away from 1
    assert m["actor/clip_frac"] > 0
    assert m["actor/approx_kl"] > 0


def test_dual_clip_binds_on_a_hand_built_pi_old(tiny):
    """A < 0 and rho = 4 > c = 3: the loss is c * |A| per token and has no gradient."""
    model = _model(tiny)
    up = _updater(model)
    samples = [s for s in _samples() if s.advantages[-1] < 0]
    current = up._score(model, samples)
    old = [lp - math.log(4.0) for lp in current]
    sums = up._accumulate(samples, old, None, None, 1.0, first_epoch=True)
    assert sums["actor/dual_clip_frac"] == pytest.approx(sums["tokens"])
    assert sums["loss/policy"] / sums["tokens"] == pytest.approx(3.0, rel=1e-5)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(float(g.abs().max()) == 0.0 for g in grads)


def test_lr_schedule_counts_optimizer_steps(tiny):
    """4 steps per iteration over 2 iterations: the cosine spans all 8 steps."""
    model = _model(tiny)
    up = _updater(model, lr=1.0, schedule_iterations=2, mini_batch_size=2)
    lrs = []
    for it in (1, 2):
        lrs.append(up.step(_samples(), iteration=it)["actor/lr"])
    # the last step of iteration k sits at progress k - 1 + 3/4 of 2 iterations
    assert lrs[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.75 / 2)))
    assert lrs[1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 1.75 / 2)))
    assert lrs[1] > 0.01
    assert up.schedule.steps == 8


def test_lr_schedule_warmup_and_one_step_matches_per_iteration_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = LRSchedule(opt, iterations=10, warmup_iterations=2)
    assert [s.set(k, 0, 1) for k in (1, 2, 3)] == pytest.approx([0.5, 1.0, 1.0])
    assert s.set(7, 0, 1) == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))
    s2 = LRSchedule(opt, iterations=10, warmup_iterations=2)
    s2.load_state_dict(s.state_dict())
    assert s2.steps == 4


def test_rollout_correction_metrics_and_mis_mask(tiny):
    # behaviour log-probs far below the trainer's: w = pi_old / pi_behaviour is huge
    samples = _samples(behaviour=-50.0)
    loss = LossConfig(rollout_correction="mis", rollout_correction_cap=2.0)
    m = _updater(_model(tiny), loss=loss).step(samples)
    assert m["actor/behaviour_logprob_max_diff"] > 40
    assert m["actor/behaviour_kl"] > 1e6
    assert m["actor/rollout_correction_masked"] == 1.0      # every token masked out
    assert m["actor/grad_norm"] == 0.0
    tis = _updater(_model(tiny), loss=LossConfig(rollout_correction="tis")).step(samples)
    assert tis["actor/grad_norm"] > 0                          # truncated at C, still trained


def test_bf16_autocast_trains(tiny):
    """Loss falls on a fixed batch under bf16 autocast (fp32 master weights)."""
    model = _model(tiny)
    samples = [s for s in _samples() if s.advantages[-1] > 0]
    up = _updater(model, lr=1e-3, autocast_dtype=torch.bfloat16)

    def nll():
        return -float(torch.cat(up._score(model, samples)).mean())

    before = nll()
    for it in range(1, 6):
        m = up.step(samples, iteration=it)
        assert math.isfinite(m["loss/policy"])
    assert nll() < before - 0.1
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_lora_on_a_bf16_base_trains_its_fp32_adapters(tiny):
    """model.dtype=auto with LoRA on native bf16: frozen bf16 base, fp32 adapters."""
    from agentgym.policy.models import apply_lora

    model = apply_lora(_model(tiny).to(torch.bfloat16), {"r": 4})
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert trained == {torch.float32} and frozen == {torch.bfloat16}
    samples = [s for s in _samples() if s.advantages[-1] > 0]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    up = PolicyUpdater(model, opt, None, LossConfig(), temperature=1.0, pad_id=0, micro_batch=4,
                       autocast_dtype=torch.bfloat16)
    base = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}

    def nll():
        return -float(torch.cat(up._score(model, samples)).mean())

    before = nll()
    for it in range(1, 6):
        assert math.isfinite(up.step(samples, iteration=it)["loss/policy"])
    assert nll() < before - 0.1
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if not p.requires_grad)
    assert up._heads is None                                 # the fp32 head copy lives for one step
    assert all(m.cast_input_dtype_enabled for m in model.modules() if hasattr(m, "cast_input_dtype_enabled"))


def test_precision_detection_from_flags():
    assert cpu_flags("processor: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n") >= {"amx_bf16"}
    assert native_bf16("cpu", {"avx512f", "avx512_bf16"})
    assert not native_bf16("cpu", {"avx2", "avx512f"})
    slow = resolve_precision("auto", "cpu", flags={"avx2"})
    assert slow.weights == torch.float32 and slow.update_autocast is None
    fast = resolve_precision("auto", "cpu", flags={"amx_bf16"})
    assert fast.weights == torch.float32 and fast.update_autocast == torch.bfloat16
    assert "bf16 autocast" in fast.describe()
    lora = resolve_precision("auto", "cpu", flags={"amx_bf16"}, lora=True)
    assert (lora.weights, lora.adapters, lora.update_autocast) == (torch.bfloat16, torch.float32, torch.bfloat16)
    assert "bfloat16 frozen base + float32 LoRA adapters" in lora.describe()
    assert resolve_precision("auto", "cpu", flags={"avx2"}, lora=True).weights == torch.float32
    explicit = resolve_precision("bfloat16", "cpu", flags={"amx_bf16"})
    assert explicit.weights == torch.bfloat16 and explicit.update_autocast is None


@pytest.mark.parametrize("history", ["batch_loss", "token_mean"])
def test_epo_history_records_the_chosen_entropy(tiny, history):
    from agentgym.config import EPOConfig

    loss = LossConfig(entropy="epo", epo=EPOConfig(history=history))
    up = _updater(_model(tiny), loss=loss, mini_batch_size=4)
    m = up.step(_samples(), iteration=1)
    expected = m["epo/entropy"] if history == "batch_loss" else m["actor/entropy"]
    assert up.entropy_history.values == [pytest.approx(expected)]
