"""The trainer's update step against a plain HF forward + backward over the same tokens.

Both sides see the same samples (prompt + response token ids), the same micro-batches
and the same AdamW step; the plain side is ``model(input_ids, labels=...)`` with the
response tokens as labels, the way one would write it by hand. They run alternately,
several times each, in one process, and the medians are compared.

    python tools/bench_update.py [--model smollm2-135m] [--samples 8] [--prompt 448] [--response 64]

Last line: ``bench_update: ratio=<plain seconds / agentgym seconds>`` (goal >= 0.8).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from agentgym.config import LossConfig
from agentgym.policy.models import load_model_and_tokenizer
from agentgym.samples import Sample, collate
from agentgym.update import PolicyUpdater


def make_samples(n: int, prompt: int, response: int, vocab: int, seed: int = 0) -> list[Sample]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        p = prompt - 16 * (i % 4)  # a little length variety, as real batches have
        ids = torch.randint(0, vocab, (p + response,), generator=g).tolist()
        adv = 1.0 if i % 2 else -1.0
        out.append(Sample(ids, [0] * p + [1] * response, [0.0] * p + [adv] * response,
                          [0.0] * (p + response), f"e{i}", 0))
    return out


def plain_step(model, optimizer, samples: list[Sample], micro_batch: int, pad_id: int) -> None:
    """What a hand-written HF fine-tuning step over the same tokens costs."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    for start in range(0, len(samples), micro_batch):
        batch = collate(samples[start:start + micro_batch], pad_id)
        labels = batch["input_ids"].masked_fill(batch["loss_mask"] == 0, -100)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
        out.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=448)
    ap.add_argument("--response", type=int, default=64)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    model, tokenizer = load_model_and_tokenizer(args.model)
    pad = tokenizer.pad_token_id
    samples = make_samples(args.samples, args.prompt, args.response, len(tokenizer))
    tokens = sum(len(s.input_ids) for s in samples)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-7)
    updater = PolicyUpdater(model, optimizer, None, LossConfig(), temperature=1.0, pad_id=pad,
                            micro_batch=args.micro_batch)

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    # one untimed round each: allocator and thread-pool warm-up
    updater.step(samples)
    plain_step(model, optimizer, samples, args.micro_batch, pad)
    ours, plain = [], []
    for _ in range(args.repeats):
        ours.append(timed(lambda: updater.step(samples)))
        plain.append(timed(lambda: plain_step(model, optimizer, samples, args.micro_batch, pad)))
    t_ours, t_plain = statistics.median(ours), statistics.median(plain)
    print(f"model {args.model}, {len(samples)} samples, {tokens} tokens "
          f"({args.response} trained per sample), micro-batch {args.micro_batch}")
    print(f"agentgym update : {t_ours:7.2f} s  ({tokens / t_ours:7.1f} tokens/s)  runs {[round(x, 2) for x in ours]}")
    print(f"plain HF fwd+bwd: {t_plain:7.2f} s  ({tokens / t_plain:7.1f} tokens/s)  runs {[round(x, 2) for x in plain]}")
    print(f"bench_update: ratio={t_plain / t_ours:.2f}")


if __name__ == "__main__":
    main()
