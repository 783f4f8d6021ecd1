"""Shared-prefix forward passes for the update (the Prefix Grouper idea).

A group's members at turn 0 share their whole prompt, and every step shares the
system prompt and task. Samples sharing a prefix of P tokens run that prefix once
(batch 1); each suffix then attends to the prefix's keys and values, expanded across
the members, with positions continuing at P. Autograd flows through the expanded
K/V back into the one prefix computation, so the prefix's gradient is the sum over
its suffixes: loss and gradients equal the duplicated computation (up to float
rounding), at about 1/G of the prefix cost.

The prefix always ends before the first position that predicts a trained token, so
every logit the loss needs comes from a suffix, in the same row-major order as the
unshared batch (a suffix sample is the sample with its first P tokens removed).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from dataclasses import dataclass

import numpy as np
import torch

from agentgym.samples import Sample


@dataclass
class Unit:
    """One forward pass: ``rows`` of the mini-batch, sharing their first ``prefix`` tokens
    (0: a plain padded batch)."""

    rows: list[int]
    prefix: int = 0


def _first_predicting(s: Sample) -> int:
    """Index of the first position whose logits predict a trained token."""
    return s.loss_mask.index(1) - 1 if 1 in s.loss_mask else len(s.input_ids)


def _lcp(a: np.ndarray, b: np.ndarray) -> int:
    m = min(a.size, b.size)
    diff = np.flatnonzero(a[:m] != b[:m])
    return int(diff[0]) if diff.size else m


def plan_units(samples: list[Sample], micro_batch: int, min_prefix: int = 32,
               max_tokens: int = 0) -> list[Unit]:
    """Split ``samples`` into forward passes of at most ``micro_batch`` rows and, when
    ``max_tokens > 0``, at most ``max_tokens`` tokens (padding included: a pass's
    activation memory grows with them; a sample longer than that runs alone).

    Samples are sorted by their token ids, so the ones sharing long prefixes are
    adjacent; the sorted run is then cut into segments that maximise the tokens saved,
    sum of (members - 1) x shared prefix (an exact dynamic programme over segments
    within both limits). A segment sharing fewer than ``min_prefix`` tokens saves
    nothing; its samples go, by length, into plain units. ``min_prefix <= 0`` disables
    sharing.
    """
    n = len(samples)
    budget = max_tokens if max_tokens > 0 else float("inf")
    if min_prefix <= 0 or n < 2:
        return _plain(list(range(n)), samples, micro_batch, budget)
    order = sorted(range(n), key=lambda i: samples[i].input_ids)
    ids = [np.asarray(samples[i].input_ids) for i in order]
    limit = [_first_predicting(samples[i]) for i in order]
    lcp_next = [_lcp(ids[k], ids[k + 1]) for k in range(n - 1)]
    best = [0] * (n + 1)              # best[j]: most tokens saved over the first j samples
    cut: list[tuple[int, int]] = [(0, 0)] * (n + 1)   # (segment start, its prefix)
    for j in range(1, n + 1):
        best[j], cut[j] = best[j - 1], (j - 1, 0)
        shared, longest = limit[j - 1], ids[j - 1].size
        for start in range(j - 2, max(-1, j - 1 - micro_batch), -1):
            shared = min(shared, lcp_next[start], limit[start])
            longest = max(longest, ids[start].size)
            if shared < min_prefix or shared + (j - start) * (longest - shared) > budget:
                break
            gain = best[start] + (j - 1 - start) * shared
            if gain > best[j]:
                best[j], cut[j] = gain, (start, shared)
    units: list[Unit] = []
    alone: list[int] = []
    j = n
    while j > 0:
        start, shared = cut[j]
        rows = [order[k] for k in range(start, j)]
        if shared:
            units.append(Unit(rows, shared))
        else:
            alone.extend(rows)
        j = start
    return units[::-1] + _plain(alone, samples, micro_batch, budget)


def _plain(rows: list[int], samples: list[Sample], micro_batch: int, budget: float) -> list[Unit]:
    """Padded batches of similar lengths, each within ``micro_batch`` rows and ``budget``
    tokens (rows x the longest)."""
    units: list[Unit] = []
    for i in sorted(rows, key=lambda i: len(samples[i].input_ids)):   # less padding
        last = units[-1].rows if units else []
        if last and len(last) < micro_batch and (len(last) + 1) * len(samples[i].input_ids) <= budget:
            last.append(i)
        else:
            units.append(Unit([i]))
    return units


def suffix(s: Sample, p: int) -> Sample:
    return Sample(s.input_ids[p:], s.loss_mask[p:], s.advantages[p:], s.behaviour_logprobs[p:],
                  s.episode_id, s.step)


def _cache_kwarg(decoder) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache`` in model forwards."""
    params = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


@functools.cache
def _caches():
    """Two cache classes whose ``update`` gives the same answer every time it is called, so a
    layer's gradient-checkpointing replay in backward sees what its forward saw (HF's
    own cache appends, and the replay would attend to the prefix twice)."""
    from transformers import DynamicCache

    class Recorder(DynamicCache):
        """The prefix pass: keeps each layer's K/V, attends to nothing before them."""

        def update(self, keys, values, layer_idx, *args, **kwargs):
            self.recorded[layer_idx] = (keys, values)
            return keys, values

    class SharedPrefix(DynamicCache):
        """The suffix pass: each layer attends to the stored prefix and its own K/V,
        without storing them."""

        def update(self, keys, values, layer_idx, *args, **kwargs):
            layer = self.layers[layer_idx]
            return torch.cat([layer.keys, keys], dim=-2), torch.cat([layer.values, values], dim=-2)

    return Recorder, SharedPrefix


@contextlib.contextmanager
def _cache_under_checkpointing(decoder):
    """HF drops the cache of a gradient-checkpointed layer unless the layer says its
    replay is safe; with the caches above it is."""
    layers = [m for m in decoder.modules() if hasattr(m, "_can_checkpoint_with_cache")]
    saved = [m.__dict__.get("_can_checkpoint_with_cache") for m in layers]
    for m in layers:
        m._can_checkpoint_with_cache = True
    try:
        yield
    finally:
        for m, value in zip(layers, saved):
            if value is None:
                del m._can_checkpoint_with_cache
            else:
                m._can_checkpoint_with_cache = value


def shared_prefix_hidden(decoder, config, prefix_ids: torch.Tensor, input_ids: torch.Tensor,
                         attention_mask: torch.Tensor) -> torch.Tensor:
    """Last hidden states of ``input_ids`` ([n, S], right-padded) continuing the one
    shared ``prefix_ids`` ([P]); gradients flow into the prefix through its K/V. Works
    with gradient checkpointing (the layers' replays read the same prefix)."""
    Recorder, SharedPrefix = _caches()
    key = _cache_kwarg(decoder)
    n, p = input_ids.shape[0], prefix_ids.shape[0]
    with _cache_under_checkpointing(decoder):
        recorder = Recorder(config=config)
        recorder.recorded = {}
        decoder(input_ids=prefix_ids[None], use_cache=True, **{key: recorder})
        shared = SharedPrefix(config=config)
        for idx, layer in enumerate(shared.layers):
            k, v = recorder.recorded[idx]
            layer.update(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1))
        mask = torch.cat([attention_mask.new_ones((n, p)), attention_mask], dim=1)
        out = decoder(input_ids=input_ids, attention_mask=mask, use_cache=True, **{key: shared})
    return out.last_hidden_state
