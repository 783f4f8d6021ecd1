"""Grouped-query attention without repeating K/V, for generation and the update.

transformers' sdpa path expands the grouped K/V heads (``repeat_kv``: a copy of every
layer's keys and values, and a reduction of their gradients in backward) whenever an
attention mask is present, which is always the case here (left padding in generation,
padding and shared prefixes in the update). Inside :func:`grouped_attention` an sdpa
model computes attention with :func:`sdpa` instead:

  * one-token queries (decoding): the query heads sharing a K/V head are folded into the
    query-length axis, so attention reads the cached K/V directly;
  * longer queries on CPU: ``scaled_dot_product_attention(enable_gqa=True)``, which
    broadcasts the K/V heads inside the kernel (on CUDA a mask with ``enable_gqa`` falls
    back to the math kernel, so there transformers' own path is kept).

Anything else (dropout, position bias, other layouts) goes to transformers' function.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

ATTENTION_NAME = "agentgym_sdpa"
_registered = False


def sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    b, q_heads, q_len, d = query.shape
    kv_heads = key.shape[1]
    plain = kv_heads == q_heads or q_heads % kv_heads or dropout or kwargs.get("position_bias") is not None \
        or kwargs.get("output_attentions") or kwargs.get("cache") is not None
    decode = q_len == 1 and (attention_mask is None or (attention_mask.dim() == 4 and attention_mask.shape[1] == 1
                                                        and attention_mask.shape[2] == 1))
    if plain or not (decode or query.device.type == "cpu"):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    if decode:
        q = query.reshape(b, kv_heads, q_heads // kv_heads, d)
        if attention_mask is not None:
            attention_mask = attention_mask[..., : key.shape[-2]]
        out = F.scaled_dot_product_attention(q, key, value, attn_mask=attention_mask, scale=scaling)
        return out.reshape(b, q_heads, 1, d).transpose(1, 2).contiguous(), None
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    causal = bool(causal and q_len > 1 and attention_mask is None)
    if causal and key.shape[2] > q_len:        # an empty static cache: keep the first q_len keys
        key, value = key[:, :, :q_len], value[:, :, :q_len]
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling,
                                         is_causal=causal, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, sdpa)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    _registered = True


@contextmanager
def grouped_attention(model):
    """Switch an sdpa model to :func:`sdpa` for the block; yields whether it did."""
    config = getattr(model, "config", None)      # a peft wrapper returns its base model's
    if getattr(config, "_attn_implementation", None) != "sdpa":
        yield False
        return
    _register()
    config._attn_implementation = ATTENTION_NAME
    try:
        yield True
    finally:
        config._attn_implementation = "sdpa"
