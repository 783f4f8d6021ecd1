"""Grouped K/V attention without repeat_kv: same outputs and gradients as transformers'."""

import pytest
import torch
from transformers.integrations import sdpa_attention

from agentgym.attention import grouped_attention
from agentgym.policy.models import load_model_and_tokenizer


@pytest.fixture
def tiny():
    model, _ = load_model_and_tokenizer("tiny")       # 4 query heads over 2 K/V heads
    assert model.config.num_key_value_heads < model.config.num_attention_heads
    return model.float()


def _batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 500, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0                                  # left padding
    mask[2, 8:] = 0                                  # right padding
    return ids, mask


def _loss_and_grads(model, ids, mask):
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids, attention_mask=mask).logits
    loss = (logits.log_softmax(-1)[mask.bool()] ** 2).mean()
    loss.backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_grouped_attention_equals_transformers_forward_and_backward(tiny, monkeypatch):
    ids, mask = _batch()
    ref_logits, ref_grads = _loss_and_grads(tiny, ids, mask)

    def no_repeat(*args, **kwargs):
        raise AssertionError("K/V heads were repeated")

    monkeypatch.setattr(sdpa_attention, "repeat_kv", no_repeat)
    with grouped_attention(tiny) as switched:
        assert switched
        logits, grads = _loss_and_grads(tiny, ids, mask)
    assert tiny.config._attn_implementation == "sdpa"     # restored
    keep = mask.bool()
    torch.testing.assert_close(logits[keep], ref_logits[keep], atol=1e-5, rtol=1e-5)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_grouped_attention_decodes_like_transformers(tiny):
    ids, mask = _batch()
    step = torch.randint(3, 500, (3, 1), generator=torch.Generator().manual_seed(1))
    step_mask = torch.cat([mask, torch.ones_like(step)], dim=1)

    def next_logits():
        with torch.no_grad():
            out = tiny(input_ids=ids, attention_mask=mask, use_cache=True)
            return tiny(input_ids=step, attention_mask=step_mask, past_key_values=out.past_key_values).logits

    ref = next_logits()
    with grouped_attention(tiny):
        torch.testing.assert_close(next_logits(), ref, atol=1e-5, rtol=1e-5)
