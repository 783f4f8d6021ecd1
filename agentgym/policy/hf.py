"""HF transformers backend: batched token-level sampling with our own decoding loop.

The loop does one model call per step with a KV cache, explicit ``position_ids`` for
left padding, a ready 4-D boolean mask, logits only for the last position during
prefill, and it drops finished sequences (and padding columns nobody needs any more)
from the batch. Three CPU-specific measures (see the sections below) keep a decoding
step close to the cost of the model's matmuls: a preallocated KV buffer instead of
``torch.cat`` per step, grouped-query attention without repeating K/V, and a faster
GEMM formulation for few-row linears. docs/models.md lists measured speeds.

Randomness: sampling draws from ``policy.generator`` when it is set (``make_policy(...,
seed=N)`` creates a private ``torch.Generator`` seeded with N), otherwise from torch's
global default generator, which the trainer seeds and checkpoints
(``torch.get_rng_state()``; ``policy.get_rng_state()`` returns whichever is used).
Either way, the same seed, prompts and sampling parameters give the same completions.
The random stream is consumed per decoding step for the whole batch, so a prompt's
completion depends on the other prompts in its batch.

Threads: this module's "threads" section is the only place that calls
``torch.set_num_threads``. Process-wide, nothing changes unless asked
(``make_policy(..., num_threads=N)`` or ``$AGENTGYM_NUM_THREADS``). Generation itself
runs with ``policy.gen_threads`` intra-op threads, restoring the previous count after
each call; the default is 1 on CPU (``$AGENTGYM_GEN_THREADS`` or ``gen_threads=`` to
change, 0 = leave torch's setting). Measured on 2 vCPUs: decoding at batch 16 is as
fast with 1 thread as with 2 on an idle machine, and 1.4x (prefill) to 10x (decoding)
faster when other processes share the cores, because OpenMP's threads then spin
waiting for each other; it also leaves a core to the environments during rollouts.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import types
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from agentgym.attention import grouped_attention
from agentgym.errors import AgentGymError
from agentgym.policy.base import (FINISH_LENGTH, FINISH_STOP, Completion, SamplingParams,
                                  TokenizerPolicy, prompt_budgets)
from agentgym.policy.models import apply_lora, load_model_and_tokenizer, max_context_of


# --------------------------------------------------------------------------- threads


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise AgentGymError(f"{name} must be an integer, got {raw!r}") from None


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's process-wide intra-op thread count if asked to (``num_threads``,
    else ``$AGENTGYM_NUM_THREADS``); otherwise leave it. Returns the count in effect."""
    wanted = num_threads if num_threads is not None else _int_env("AGENTGYM_NUM_THREADS")
    if wanted is not None and wanted > 0 and wanted != torch.get_num_threads():
        torch.set_num_threads(int(wanted))
    return torch.get_num_threads()


def default_gen_threads(device: str | torch.device) -> int:
    """Threads for generation: ``$AGENTGYM_GEN_THREADS``, else 1 on CPU, else 0 (leave)."""
    env = _int_env("AGENTGYM_GEN_THREADS")
    if env is not None:
        return max(0, env)
    return 1 if torch.device(device).type == "cpu" else 0


@contextmanager
def _generation_threads(n: int):
    """Run the block with ``n`` intra-op threads (0 = unchanged), then restore."""
    previous = torch.get_num_threads()
    if n <= 0 or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# --------------------------------------------------------------------------- narrow linears

# On CPU, MKL's fp32 GEMM is slow for x @ W.T when x has only a few rows (one row per
# sequence during decoding): measured on 2 cores, a 16-row step through SmolLM2's
# projections takes ~2.5x longer than computing the same product as (W @ x.T).T, where
# W is the large operand. Above ~48 rows (prefill, training) F.linear is as fast or
# faster. During generation only, plain nn.Linear modules on CPU use this formulation.
NARROW_ROWS = 48


def _narrow_linear_forward(self, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // self.in_features if self.in_features else 0
    if 1 < rows <= NARROW_ROWS and x.dtype == torch.float32 and x.device.type == "cpu":
        out = torch.mm(self.weight, x.reshape(rows, self.in_features).t()).t().contiguous()
        if self.bias is not None:
            out = out + self.bias
        return out.view(*x.shape[:-1], self.out_features)
    return F.linear(x, self.weight, self.bias)


@contextmanager
def _narrow_linears(model):
    """Route the model's plain CPU fp32 nn.Linear layers through
    :func:`_narrow_linear_forward` for the duration of the block."""
    patched = []
    for module in model.modules():
        if type(module) is torch.nn.Linear and module.weight.device.type == "cpu" \
                and module.weight.dtype == torch.float32 and "forward" not in module.__dict__:
            module.forward = types.MethodType(_narrow_linear_forward, module)
            patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            module.__dict__.pop("forward", None)


# --------------------------------------------------------------------------- KV cache and attention

# transformers' DynamicLayer appends with torch.cat, copying the whole cache of every
# layer at every step, and its sdpa path expands the grouped K/V heads (repeat_kv) at
# every step whenever a padding mask is present. With agent prompts of ~1k tokens these
# copies cost as much as the model itself. Generation therefore uses
#  * _GrowingLayer: a preallocated buffer per layer, filled in place, exposed as views;
#  * agentgym.attention.grouped_attention: grouped K/V heads are not repeated (for
#    one-token queries the query heads sharing a K/V head are folded into the
#    query-length axis, so attention reads the cached K/V directly).
# The cache applies only inside HFPolicy.generate.


_GROWING = None  # the GrowingLayer class, built on first use (it subclasses DynamicLayer)


def _growing_layer_class():
    global _GROWING
    if _GROWING is not None:
        return _GROWING
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer whose keys/values live in a buffer with spare capacity."""

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity = int(capacity)
            self._k = self._v = None
            self._len = 0

        def lazy_initialization(self, key_states, value_states) -> None:
            self.dtype, self.device = key_states.dtype, key_states.device
            b, h, _, d = key_states.shape
            self._k = key_states.new_empty((b, h, self.capacity, d))
            self._v = value_states.new_empty((b, value_states.shape[1], self.capacity, value_states.shape[-1]))
            self._len = 0
            self.is_initialized = True

        def _refresh(self) -> None:
            self.keys = self._k[:, :, : self._len]
            self.values = self._v[:, :, : self._len]

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = key_states.shape[-2]
            if self._len + n > self._k.shape[-2]:  # out of room: grow (rare)
                extra = max(n, self._k.shape[-2])
                pad_k = self._k.new_empty((*self._k.shape[:2], extra, self._k.shape[-1]))
                pad_v = self._v.new_empty((*self._v.shape[:2], extra, self._v.shape[-1]))
                self._k = torch.cat([self._k[:, :, : self._len], pad_k], dim=2)
                self._v = torch.cat([self._v[:, :, : self._len], pad_v], dim=2)
            self._k[:, :, self._len: self._len + n] = key_states
            self._v[:, :, self._len: self._len + n] = value_states
            self._len += n
            self._refresh()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self._len if self.is_initialized else 0

        def batch_select_indices(self, indices) -> None:
            if self.is_initialized:
                self._k = self._k.index_select(0, indices)
                self._v = self._v.index_select(0, indices)
                self._refresh()

        def crop_left(self, n: int) -> None:
            if self.is_initialized and n > 0:
                self._k = self._k[:, :, n:]
                self._v = self._v[:, :, n:]
                self._len -= n
                self._refresh()

        def crop(self, tokens_to_remove: int) -> None:  # not used by generation
            raise NotImplementedError

        def reset(self) -> None:
            self._k = self._v = None
            self._len = 0
            super().reset()

    _GROWING = GrowingLayer
    return GrowingLayer


def _new_cache(model, capacity: int):
    """A DynamicCache whose plain full-attention layers preallocate ``capacity`` slots."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer for layer in layers):
        growing = _growing_layer_class()
        cache.layers = [growing(capacity) for _ in layers]
    return cache


def _is_growing(cache) -> bool:
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is _growing_layer_class() for layer in layers)


def _crop_left(cache, n: int) -> bool:
    """Drop the first ``n`` positions of every layer (plain or growing layers only);
    returns False, leaving the cache alone, if any layer is of another kind."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    growing = _growing_layer_class()
    if not layers or any(type(layer) not in (DynamicLayer, growing) for layer in layers):
        return False
    for layer in layers:
        if isinstance(layer, growing):
            layer.crop_left(n)
        elif layer.is_initialized and layer.keys is not None and layer.keys.numel():
            layer.keys = layer.keys[:, :, n:, :]
            layer.values = layer.values[:, :, n:, :]
    return True


# --------------------------------------------------------------------------- sampling


def _top_k(p: torch.Tensor, k: int) -> torch.Tensor:
    """Zero all but the k most probable tokens of each row."""
    vals, idx = torch.topk(p, k, dim=-1)
    return torch.zeros_like(p).scatter_(-1, idx, vals)


def _top_p(p: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tokens outside each row's nucleus (the most probable tokens whose mass
    before them is < top_p of the row's total). ``p`` may be unnormalised.

    A full sort of a 49k vocabulary is slow on a CPU, so the nucleus is first looked
    for among the top 256 tokens, widening only for rows where that is not enough.
    """
    vocab = p.shape[-1]
    threshold = p.sum(-1, keepdim=True) * top_p
    k = min(vocab, 256)
    while True:
        vals, idx = torch.topk(p, k, dim=-1)
        cum = vals.cumsum(-1)
        if k == vocab or bool((cum[:, -1:] >= threshold).all()):
            break
        k = min(vocab, k * 8)
    keep = (cum - vals) < threshold  # the most probable token always survives
    return torch.zeros_like(p).scatter_(-1, idx, vals * keep)


def sample_next(
    logits: torch.Tensor, sampling: SamplingParams, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample one token per row of ``logits`` (b, vocab).

    Returns ``(token, logprob, entropy)``, each of shape (b,); logprob and entropy are
    those of ``softmax(logits / T)`` before top-k/top-p truncation (T = 1 when greedy).
    Sampling inverts the CDF with one uniform draw per row (``torch.rand`` on
    ``generator``), which is much cheaper than ``torch.multinomial`` over a large
    vocabulary on a CPU.
    """
    logits = logits.float()
    greedy = sampling.greedy
    temperature = 1.0 if greedy else float(sampling.temperature)
    scaled = logits / temperature if temperature != 1.0 else logits
    logp = torch.log_softmax(scaled, dim=-1)
    p = logp.exp()
    entropy = -(p * logp).nansum(-1)  # 0 * -inf (masked logits) counts as 0
    if greedy:
        token = torch.argmax(logits, dim=-1)
    else:
        probs = p
        vocab = probs.shape[-1]
        if 0 < int(sampling.top_k) < vocab:
            probs = _top_k(probs, int(sampling.top_k))
        if float(sampling.top_p) < 1.0:
            probs = _top_p(probs, float(sampling.top_p))
        cdf = probs.cumsum(-1)
        u = torch.rand((probs.shape[0], 1), generator=generator, device=probs.device, dtype=cdf.dtype)
        token = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(-1).clamp_(max=vocab - 1)
    logprob = logp.gather(-1, token[:, None]).squeeze(-1)
    return token, logprob, entropy


class _StopChecker:
    """Detects stop strings in a growing token list by decoding a short tail window."""

    def __init__(self, tokenizer, stop_strings: list[str]):
        self.tokenizer = tokenizer
        self.stops = list(stop_strings)
        # A token is at least one byte and a character at most four, so a stop string of
        # n characters lies within the last 4n + 1 tokens once it is complete.
        self.window = 4 * max(len(s) for s in self.stops) + 1

    def hit(self, tokens: list[int]) -> bool:
        tail = self.tokenizer.decode(tokens[-self.window:], skip_special_tokens=False)
        return any(s in tail for s in self.stops)


# --------------------------------------------------------------------------- policy


class HFPolicy(TokenizerPolicy):
    """A causal LM from transformers, sampled with a batched KV-cache loop.

    Attributes: ``model`` (possibly a peft model), ``tokenizer`` (left padding),
    ``max_context``, ``generator`` (None = torch's global RNG), ``max_batch_size`` and
    ``max_batch_tokens`` (a batch larger than these is generated in chunks),
    ``gen_threads`` (intra-op threads while generating; see the module docstring).
    Generation is serialised by a lock, so one policy can serve several threads.
    """

    trainable = True

    def __init__(
        self,
        model,
        tokenizer,
        *,
        name: str = "",
        max_context: int | None = None,
        generator: torch.Generator | None = None,
        max_batch_size: int = 64,
        max_batch_tokens: int = 64 * 1024,
        gen_threads: int | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or getattr(getattr(model, "config", None), "name_or_path", "") or "hf-model"
        self.max_context = max_context if max_context is not None else max_context_of(model)
        self.generator = generator
        self.max_batch_size = int(max_batch_size)
        self.max_batch_tokens = int(max_batch_tokens)
        self.gen_threads = default_gen_threads(self.device) if gen_threads is None else max(0, int(gen_threads))
        if tokenizer.eos_token_id is None:
            raise AgentGymError(f"the tokenizer of {self.name} has no eos token; cannot tell when a reply ends")
        self.eos_token_id = int(tokenizer.eos_token_id)
        # Some models end turns with several ids (generation_config lists them all).
        extra = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        extra = extra if isinstance(extra, (list, tuple)) else [extra] if extra is not None else []
        self.stop_token_ids = frozenset([self.eos_token_id, *(int(e) for e in extra)])
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_id
        # HF servers and rollout threads may share one policy; one generation at a time.
        self._lock = threading.RLock()

    # -- helpers ---------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        try:
            return next(self.model.parameters()).device
        except StopIteration:  # pragma: no cover
            return torch.device("cpu")

    def get_rng_state(self) -> torch.Tensor:
        """State of the generator sampling uses (private generator or torch's global)."""
        return self.generator.get_state() if self.generator is not None else torch.get_rng_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        if self.generator is not None:
            self.generator.set_state(state)
        else:
            torch.set_rng_state(state)

    # -- generation ------------------------------------------------------------

    def generate(self, prompts: list[list[int]], sampling: SamplingParams | None = None) -> list[Completion]:
        sampling = sampling or SamplingParams()
        sampling.validate()
        if not prompts:
            return []
        prompts, budgets = prompt_budgets(prompts, sampling, self.max_context)

        results: list[Completion | None] = [None] * len(prompts)
        # Prefill is matmul-bound and uses every thread torch has; token-by-token
        # decoding runs with gen_threads (on CPU, 1 is faster: see default_gen_threads).
        prefill_threads = torch.get_num_threads()
        with self._lock, _generation_threads(self.gen_threads):
            for chunk in self._chunks(prompts, budgets):
                outs = self._generate_batch([prompts[i] for i in chunk], [budgets[i] for i in chunk],
                                            sampling, prefill_threads)
                for i, out in zip(chunk, outs):
                    results[i] = out
        return results  # type: ignore[return-value]

    def _chunks(self, prompts: list[list[int]], budgets: list[int]) -> list[list[int]]:
        """Split indices into batches bounded by max_batch_size and max_batch_tokens
        (padded length x rows), longest prompts first so rows in a batch pad little."""
        if len(prompts) <= self.max_batch_size and \
                len(prompts) * max(len(p) + b for p, b in zip(prompts, budgets)) <= self.max_batch_tokens:
            return [list(range(len(prompts)))]
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        chunks: list[list[int]] = []
        current: list[int] = []
        width = 0
        for i in order:
            w = max(width, len(prompts[i]) + budgets[i])
            if current and (len(current) + 1 > self.max_batch_size or (len(current) + 1) * w > self.max_batch_tokens):
                chunks.append(current)
                current, w = [], len(prompts[i]) + budgets[i]
            current.append(i)
            width = w
        if current:
            chunks.append(current)
        return chunks

    def _forward(self, input_ids, attention_mask, position_ids, cache, last_only: bool):
        kwargs: dict[str, Any] = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
        )
        kwargs[_cache_keyword(self.model)] = cache
        if last_only:
            kwargs["logits_to_keep"] = 1
        out = self.model(**kwargs)
        return out.logits[:, -1, :]

    def _prefill_distinct(self, prompts: list[list[int]], width: int, cache) -> torch.Tensor:
        """Fill ``cache`` with the left-padded batch's prompt K/V and return each row's
        next-token logits, running the model once per *distinct* prompt.

        Rollout groups start from identical prompts (G members, one task), and on CPU a
        prompt of a few hundred tokens already keeps the matmuls busy, so one unpadded
        forward per distinct prompt costs less than a padded forward over every row.
        On a GPU the distinct prompts go through in one padded batch instead.
        """
        from transformers import DynamicCache

        device = self.device
        index: dict[tuple[int, ...], int] = {}
        row_source = [index.setdefault(tuple(p), len(index)) for p in prompts]
        distinct = [list(p) for p in index]
        per_call = 1 if device.type == "cpu" else len(distinct)
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        logits = None
        order = sorted(range(len(distinct)), key=lambda u: len(distinct[u]))
        for start in range(0, len(order), per_call):
            rows = order[start:start + per_call]
            w = max(len(distinct[u]) for u in rows)
            ids = torch.full((len(rows), w), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), w), dtype=torch.bool)
            for r, u in enumerate(rows):
                ids[r, w - len(distinct[u]):] = torch.tensor(distinct[u], dtype=torch.long)
                mask[r, w - len(distinct[u]):] = True
            ids, mask = ids.to(device), mask.to(device)
            position_ids = (mask.long().cumsum(-1) - 1).clamp_(min=0)
            small = DynamicCache(config=self.model.config)
            out = self._forward(ids, None if bool(mask.all()) else mask, position_ids, small, last_only=True)
            if logits is None:
                logits = out.new_empty((len(distinct), out.shape[-1]))
            at = torch.tensor(rows, dtype=torch.long, device=device)
            logits[at] = out
            for layer_idx, layer in enumerate(small.layers):
                if layer_idx == len(keys):  # padding slots hold zeros: masked, and never NaN
                    keys.append(layer.keys.new_zeros((len(distinct), *layer.keys.shape[1:2], width, layer.keys.shape[-1])))
                    values.append(layer.values.new_zeros((len(distinct), *layer.values.shape[1:2], width, layer.values.shape[-1])))
                keys[layer_idx][at, :, width - w:] = layer.keys
                values[layer_idx][at, :, width - w:] = layer.values
        expand = torch.tensor(row_source, dtype=torch.long, device=device)
        for layer, k, v in zip(cache.layers, keys, values):
            layer.update(k.index_select(0, expand), v.index_select(0, expand))
        return logits.index_select(0, expand)

    def _generate_batch(self, prompts: list[list[int]], budgets: list[int], sampling: SamplingParams,
                        prefill_threads: int = 0) -> list[Completion]:
        device = self.device
        n = len(prompts)
        width = max(len(p) for p in prompts)
        max_steps = max(budgets)

        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.bool)
        for row, p in enumerate(prompts):
            input_ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[row, width - len(p):] = True
        input_ids, mask = input_ids.to(device), mask.to(device)
        padded = not bool(mask.all())
        position_ids = (mask.long().cumsum(-1) - 1).clamp_(min=0)
        next_pos = mask.long().sum(-1)  # position of the next token of each row

        stop = _StopChecker(self.tokenizer, sampling.stop_strings) if sampling.stop_strings else None
        stop_ids = self.stop_token_ids
        tokens: list[list[int]] = [[] for _ in range(n)]
        logprobs: list[list[float]] = [[] for _ in range(n)]
        entropies: list[list[float]] = [[] for _ in range(n)]
        finish = [FINISH_LENGTH] * n
        active = list(range(n))  # original row of each row in the current batch
        budget_left = list(budgets)

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), _narrow_linears(self.model), \
                    grouped_attention(self.model) as sdpa:
                cache = _new_cache(self.model, width + max_steps)
                with _generation_threads(prefill_threads):
                    if _is_growing(cache):
                        logits = self._prefill_distinct(prompts, width, cache)
                    else:
                        # HF builds the causal + padding mask (it handles fully padded rows).
                        logits = self._forward(input_ids, mask if padded else None, position_ids, cache,
                                               last_only=True)
                for _step in range(max_steps):
                    token, lp, ent = sample_next(logits, sampling, self.generator)
                    token_l, lp_l, ent_l = token.tolist(), lp.tolist(), ent.tolist()
                    keep: list[int] = []
                    for r, orig in enumerate(active):
                        t = token_l[r]
                        tokens[orig].append(t)
                        logprobs[orig].append(lp_l[r])
                        entropies[orig].append(ent_l[r])
                        budget_left[orig] -= 1
                        if t in stop_ids or (stop is not None and stop.hit(tokens[orig])):
                            finish[orig] = FINISH_STOP
                        elif budget_left[orig] > 0:
                            keep.append(r)
                    if not keep:
                        break
                    if len(keep) < len(active):
                        idx = torch.tensor(keep, dtype=torch.long, device=device)
                        token, mask, next_pos = token[idx], mask[idx], next_pos[idx]
                        # Padding columns that no remaining row uses can go too.
                        first = int(mask.any(0).long().argmax())
                        cache.batch_select_indices(idx)
                        if first > 0 and _crop_left(cache, first):
                            mask = mask[:, first:]
                        active = [active[r] for r in keep]
                    mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.bool, device=device)], dim=1)
                    padded = padded and not bool(mask.all())
                    # A ready 4-D boolean mask skips HF's per-step mask construction.
                    if not padded:
                        step_mask = None
                    elif sdpa:
                        step_mask = mask[:, None, None, :]
                    else:
                        step_mask = mask
                    logits = self._forward(token[:, None], step_mask, next_pos[:, None], cache, last_only=False)
                    next_pos = next_pos + 1
        finally:
            if was_training:
                self.model.train()

        return [
            Completion(
                prompt_ids=list(prompts[i]),
                token_ids=tokens[i],
                logprobs=logprobs[i],
                entropies=entropies[i],
                text=self.decode(tokens[i]),
                finish_reason=finish[i],
            )
            for i in range(n)
        ]


def _cache_keyword(model) -> str:
    """transformers >= 5.x names the KV cache argument ``cache`` (``past_key_values``
    still works there, with a FutureWarning on every call); older versions only know
    ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _cache_keyword_of(type(base))


@functools.lru_cache(maxsize=None)
def _cache_keyword_of(cls: type) -> str:
    try:
        params = inspect.signature(cls.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - an unusual model class
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def load_hf_policy(
    name_or_path: str,
    *,
    dtype: Any = "float32",
    device: str = "cpu",
    lora: dict | None = None,
    seed: int | None = None,
    num_threads: int | None = None,
    gen_threads: int | None = None,
    max_batch_size: int = 64,
    max_batch_tokens: int = 64 * 1024,
) -> HFPolicy:
    configure_threads(num_threads)
    model, tokenizer = load_model_and_tokenizer(name_or_path, dtype=dtype, device=device)
    if lora:
        model = apply_lora(model, dict(lora))
    generator = None
    if seed is not None:
        generator = torch.Generator(device=model.device if hasattr(model, "device") else "cpu")
        generator.manual_seed(int(seed))
    return HFPolicy(
        model, tokenizer, name=name_or_path, generator=generator,
        max_batch_size=max_batch_size, max_batch_tokens=max_batch_tokens, gen_threads=gen_threads,
    )
