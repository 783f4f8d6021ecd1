"""The trainer's update step against a plain HF fp32 forward + backward + AdamW.

Samples have the quickstart's shapes (configs/quickstart.yaml: 2 tasks x 4 members,
~408-token prompts, replies of up to 12 tokens, episodes of 1-3 steps, LoRA r 16):
at turn 0 a group's members share their whole prompt; later turns share the system
prompt and task and differ in the observation. Both sides see the same samples, the
same model (the plain side in fp32) and the same AdamW step:

  agentgym  PolicyUpdater as the trainer builds it (model.dtype=auto: where the CPU
            has AMX/AVX512-BF16, bf16 autocast, and with LoRA a bf16 frozen base;
            shared-prefix forward passes)
  plain     ``model(input_ids, labels=...)`` in fp32, micro-batches by length, the way
            one would write it by hand

They run alternately, several times each, in one process; medians are compared.
``peak_fraction`` is the FLOP rate the agentgym update reaches (model FLOPs of the
tokens it actually computes: 2 N per token forward, 2 N backward for the activation
gradients, + 2 N for the weight gradients when fully fine-tuned; N = the transformer's
matmul parameters, plus the lm head at trained positions and attention) over this
machine's measured bf16 matmul peak (2048^2 matmuls, the best of 3 timings).

    python tools/bench_update.py [--model smollm2-135m] [--full] [--groups 2] [--repeats 3]
                                 [--no-share] [--fp32] [--checkpointing] [--micro-batch-tokens N]

Last line: ``bench_update: ratio=<plain s / agentgym s> peak_fraction=<y>``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from agentgym.config import LossConfig, TrainerConfig
from agentgym.policy.models import apply_lora, load_model_and_tokenizer
from agentgym.precision import resolve_precision
from agentgym.prefix_sharing import plan_units
from agentgym.samples import Sample, collate
from agentgym.update import PolicyUpdater


def quickstart_samples(vocab: int, groups: int = 2, members: int = 4, prompt: int = 408,
                       shared_task: int = 300, reply: int = 12, seed: int = 0) -> list[Sample]:
    """Turn 0: each member repeats its group's prompt; members 0 and 1 play a second
    turn, member 0 a third, whose prompts keep the first ``shared_task`` tokens."""
    g = torch.Generator().manual_seed(seed)

    def rand(n):
        return torch.randint(3, vocab, (n,), generator=g).tolist()

    out = []
    for k in range(groups):
        base = rand(prompt)
        for m in range(members):
            for turn in range(3 - min(m, 2) if m < 2 else 1):
                p = base if turn == 0 else base[:shared_task] + rand(prompt - shared_task)
                n = reply - (m + turn) % 4          # replies of 9-12 tokens
                adv = 1.0 if (m + k) % 2 else -1.0
                out.append(Sample(p + rand(n), [0] * len(p) + [1] * n, [0.0] * len(p) + [adv] * n,
                                  [0.0] * len(p) + [-1.0] * n, f"e{k}{m}", turn))
    return out


def plain_step(model, optimizer, samples: list[Sample], micro_batch: int, pad_id: int) -> None:
    """What a hand-written fp32 HF fine-tuning step over the same tokens costs."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    order = sorted(samples, key=lambda s: len(s.input_ids))
    trained = sum(sum(s.loss_mask) for s in samples)
    for start in range(0, len(order), micro_batch):
        batch = collate(order[start:start + micro_batch], pad_id)
        labels = batch["input_ids"].masked_fill(batch["loss_mask"] == 0, -100)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
        # HF's loss is a mean over this micro-batch's labels: reweight to the batch mean
        (out.loss * (batch["loss_mask"][:, 1:].sum() / trained)).backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0)


def update_flops(model, samples: list[Sample], micro_batch: int, share: int, max_tokens: int,
                 full: bool) -> float:
    """Model FLOPs of the update's forward and backward over the tokens it computes."""
    cfg = model.config
    d, layers = cfg.hidden_size, cfg.num_hidden_layers
    inter, kv = cfg.intermediate_size, cfg.num_key_value_heads * (d // cfg.num_attention_heads)
    n_matmul = layers * (2 * d * d + 2 * d * kv + 3 * d * inter)
    per_param = 6 if full else 4
    total = 0.0
    for unit in plan_units(samples, micro_batch, share, max_tokens):
        lengths = [len(samples[i].input_ids) - unit.prefix for i in unit.rows]
        tokens = unit.prefix + sum(lengths)
        attn = sum(4 * layers * d * L * (unit.prefix + L) for L in lengths) + 4 * layers * d * unit.prefix ** 2
        total += per_param * n_matmul * tokens + 3 * attn
    trained = sum(sum(s.loss_mask) for s in samples)
    return total + 3 * 2 * d * cfg.vocab_size * trained


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA r 16")
    defaults = TrainerConfig()
    ap.add_argument("--micro-batch", type=int, default=defaults.micro_batch)
    ap.add_argument("--micro-batch-tokens", type=int, default=defaults.micro_batch_tokens)
    ap.add_argument("--groups", type=int, default=2, help="tasks per iteration (quickstart: 2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-share", action="store_true", help="ablation: no shared-prefix passes")
    ap.add_argument("--fp32", action="store_true", help="ablation: no bf16 autocast")
    ap.add_argument("--checkpointing", action="store_true",
                    help="gradient checkpointing on the agentgym side (model.gradient_checkpointing)")
    args = ap.parse_args()
    # Not memory.limit_retained_memory(): it is process-wide, and with it the plain side
    # ran 29 s instead of 22 (an unfair baseline); the quickstart measures its effect.

    precision = resolve_precision("float32" if args.fp32 else "auto", lora=not args.full)

    def load(dtype):
        model, tokenizer = load_model_and_tokenizer(args.model, dtype=dtype)
        if not args.full:
            model = apply_lora(model, {"r": 16, "alpha": 32})   # the quickstart's, as the trainer applies it
        return model, tokenizer

    model, tokenizer = load(precision.weights)                  # as the trainer loads it
    loaded_gb = rss_gb()
    pad = tokenizer.pad_token_id
    samples = quickstart_samples(len(tokenizer), groups=args.groups)
    tokens = sum(len(s.input_ids) for s in samples)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-7)
    share = 0 if args.no_share else 32
    updater = PolicyUpdater(model, optimizer, None, LossConfig(), temperature=0.7, pad_id=pad,
                            micro_batch=args.micro_batch, autocast_dtype=precision.update_autocast,
                            share_prefix_min=share, micro_batch_tokens=args.micro_batch_tokens)

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def ours_step():
        if args.checkpointing:
            model.gradient_checkpointing_enable()
        updater.step(samples)
        if args.checkpointing:
            model.gradient_checkpointing_disable()

    ours_step()                             # untimed: allocator and thread-pool warm-up
    ours = [timed(ours_step) for _ in range(1)]
    update_peak_gb = rss_gb()
    plain_model, plain_optimizer = model, optimizer       # the plain side trains fp32 weights
    if precision.weights != torch.float32:
        plain_model = load(torch.float32)[0]
        plain_optimizer = torch.optim.AdamW([p for p in plain_model.parameters() if p.requires_grad], lr=1e-7)
    plain_step(plain_model, plain_optimizer, samples, args.micro_batch, pad)
    plain = []
    for _ in range(args.repeats):
        plain.append(timed(lambda: plain_step(plain_model, plain_optimizer, samples, args.micro_batch, pad)))
        ours.append(timed(ours_step))
    t_ours, t_plain = statistics.median(ours), statistics.median(plain)
    units = plan_units(samples, args.micro_batch, share, args.micro_batch_tokens)
    computed = sum(u.prefix + sum(len(samples[i].input_ids) - u.prefix for i in u.rows) for u in units)
    flops = update_flops(model, samples, args.micro_batch, share, args.micro_batch_tokens, args.full)
    peak_dtype = precision.update_autocast or torch.float32
    peak = max(matmul_peak(peak_dtype) for _ in range(3))     # the best of 3: these machines are noisy
    print(f"model {args.model} ({'full' if args.full else 'LoRA r 16'}), {len(samples)} samples, "
          f"{tokens} tokens, {sum(sum(s.loss_mask) for s in samples)} trained; "
          f"shared prefixes: {computed} tokens computed")
    print(precision.describe())
    print(f"agentgym update : {t_ours:7.2f} s  ({tokens / t_ours:7.1f} tokens/s)  runs {[round(x, 2) for x in ours]}")
    print(f"plain HF fp32   : {t_plain:7.2f} s  ({tokens / t_plain:7.1f} tokens/s)  runs {[round(x, 2) for x in plain]}")
    print(f"update FLOP rate {flops / t_ours / 1e12:.3f} TFLOP/s; measured {peak_dtype} matmul peak "
          f"{peak / 1e12:.3f} TFLOP/s")
    print(f"peak RSS: model loaded {loaded_gb:.2f} GB, through the agentgym update {update_peak_gb:.2f} GB, "
          f"after the plain runs {rss_gb():.2f} GB")
    print(f"bench_update: ratio={t_plain / t_ours:.2f} peak_fraction={flops / t_ours / peak:.2f}")


if __name__ == "__main__":
    main()
