"""Shared-prefix updates: same loss and gradients as duplicating the prefix per sample."""

import pytest
import torch

from agentgym.config import LossConfig
from agentgym.policy.models import load_model_and_tokenizer
from agentgym.prefix_sharing import plan_units
from agentgym.samples import Sample
from agentgym.update import PolicyUpdater


def _group_samples(groups=2, members=3, prompt=40, seed=0):
    """Each group's members share their whole prompt (turn 0); groups share 8 tokens."""
    g = torch.Generator().manual_seed(seed)
    system = torch.randint(3, 500, (8,), generator=g).tolist()
    out = []
    for k in range(groups):
        shared = system + torch.randint(3, 500, (prompt - 8,), generator=g).tolist()
        for m in range(members):
            n = 3 + 2 * m                       # replies of different lengths
            reply = torch.randint(3, 500, (n,), generator=g).tolist()
            adv = float(m - 1)
            out.append(Sample(shared + reply, [0] * prompt + [1] * n, [0.0] * prompt + [adv] * n,
                              [-1.0] * (prompt + n), f"e{k}{m}", 0))
    out.append(Sample(system + [7] * 20, [0] * 24 + [1] * 4, [0.0] * 24 + [0.5] * 4, [0.0] * 28, "x", 0))
    return out


def test_plan_groups_members_sharing_their_prompt():
    samples = _group_samples()
    units = plan_units(samples, micro_batch=8, min_prefix=16)
    shared = [u for u in units if u.prefix]
    assert sorted(sorted(u.rows) for u in shared) == [[0, 1, 2], [3, 4, 5]]
    # the prefix stops before the first position that predicts a trained token
    assert all(u.prefix == 39 for u in shared)
    assert sorted(i for u in units for i in u.rows) == list(range(len(samples)))
    assert all(u.prefix == 0 for u in plan_units(samples, 8, min_prefix=0))
    assert max(len(u.rows) for u in plan_units(samples, 2, min_prefix=16)) == 2


def _tokens(samples, unit):
    """Tokens one forward pass holds: the prefix once, then each row padded to the longest."""
    longest = max(len(samples[i].input_ids) for i in unit.rows)
    return unit.prefix + len(unit.rows) * (longest - unit.prefix)


@pytest.mark.parametrize("min_prefix", [16, 0], ids=["shared", "plain"])
def test_plan_keeps_each_pass_within_the_token_budget(min_prefix):
    samples = _group_samples()            # prompts of 40, replies of 3/5/7, one sample of 28
    for budget in (30, 60, 100, 150):
        units = plan_units(samples, micro_batch=8, min_prefix=min_prefix, max_tokens=budget)
        assert sorted(i for u in units for i in u.rows) == list(range(len(samples)))
        # a pass over the budget holds one sample that is itself longer than the budget
        assert all(_tokens(samples, u) <= budget or len(u.rows) == 1 for u in units), budget
    # 60 tokens: a whole group (39 + 3 x 8 = 63) no longer fits, two members do (39 + 2 x 6)
    tight = plan_units(samples, 8, min_prefix=16, max_tokens=60)
    assert max(len(u.rows) for u in tight if u.prefix) == 2
    assert plan_units(samples, 8, 16, max_tokens=0) == plan_units(samples, 8, 16)


def _grads_and_metrics(model, samples, share, loss_cfg):
    model.zero_grad(set_to_none=True)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    up = PolicyUpdater(model, opt, None, loss_cfg, temperature=0.7, pad_id=0, micro_batch=8,
                       share_prefix_min=16 if share else 0)
    assert up.share_prefix_min == (16 if share else 0)
    assert any(u.prefix for u in plan_units(samples, 8, up.share_prefix_min)) == share
    old = [lp - 0.05 for lp in up._score(model, samples)]     # rho != 1: the clip can act
    sums = up._accumulate(samples, old, None, None, 1.0, first_epoch=True)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, sums, up._score(model, samples)


@pytest.mark.parametrize("checkpointing", [False, True], ids=["", "checkpointing"])
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_shared_prefix_loss_and_gradients_equal_duplicated(lora, checkpointing):
    model, _ = load_model_and_tokenizer("tiny-smollm2")
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
        for name, p in model.named_parameters():      # non-zero B: LoRA grads reach A too
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.02)
    model.train()
    samples = _group_samples()
    cfg = LossConfig(entropy_coef=0.01, aggregation="seq_mean_token_mean")
    g_dup, s_dup, lp_dup = _grads_and_metrics(model, samples, False, cfg)
    if checkpointing:   # the shared pass replays each layer in backward; the plain one did not
        model.gradient_checkpointing_enable()
    calls = {"decoder": 0, "layer": 0}
    decoder = model.get_decoder()
    hooks = [decoder.register_forward_pre_hook(lambda *_: calls.__setitem__("decoder", calls["decoder"] + 1)),
             decoder.layers[0].register_forward_pre_hook(lambda *_: calls.__setitem__("layer", calls["layer"] + 1))]
    g_sh, s_sh, lp_sh = _grads_and_metrics(model, samples, True, cfg)
    for h in hooks:
        h.remove()
    # under checkpointing each layer runs again in backward: more layer calls than passes
    assert (calls["layer"] > calls["decoder"]) == checkpointing
    for a, b in zip(lp_dup, lp_sh):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert s_sh["loss/policy"] == pytest.approx(s_dup["loss/policy"], abs=1e-5)
    assert s_sh["actor/entropy"] == pytest.approx(s_dup["actor/entropy"], rel=1e-5)
    assert g_dup.keys() == g_sh.keys() and g_dup
    for name in g_dup:
        torch.testing.assert_close(g_sh[name], g_dup[name], atol=1e-5, rtol=1e-4, msg=name)
