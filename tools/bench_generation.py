"""Generation speed of the HF backend in fp32 against bf16 weights, on this machine.

With LoRA, ``model.dtype: auto`` on a CPU with native bf16 loads the frozen base in
bf16 (fp32 adapters) and samples from it; full fine-tuning samples from the fp32
master weights. This measures both on the quickstart's shapes (4 tasks x 8 members
sharing a ~400-token prompt, 12 new tokens, LoRA r 16, T 0.7): bf16 base + fp32
adapters against all-fp32, both sides in one process, alternately, medians compared.

    python tools/bench_generation.py [--model smollm2-135m] [--tasks 4] [--group 8]
                                     [--prompt 400] [--new-tokens 12] [--repeats 3]

Last line: ``bench_generation: bf16_over_fp32=<bf16 tokens/s / fp32 tokens/s>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from agentgym.policy.base import SamplingParams
from agentgym.policy.hf import load_hf_policy
from agentgym.precision import native_bf16


def prompts(vocab: int, tasks: int, group: int, length: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(0)
    shared = [torch.randint(3, vocab, (length,), generator=g).tolist() for _ in range(tasks)]
    return [p for p in shared for _ in range(group)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=400)
    ap.add_argument("--new-tokens", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    lora = {"r": 16, "alpha": 32}
    policies = {dtype: load_hf_policy(args.model, dtype=dtype, lora=lora, seed=0)
                for dtype in ("float32", "bfloat16")}
    batch = prompts(len(policies["float32"].tokenizer), args.tasks, args.group, args.prompt)
    sampling = SamplingParams(max_new_tokens=args.new_tokens, temperature=0.7, top_p=0.9)

    def tokens_per_s(policy) -> float:
        t0 = time.perf_counter()
        out = policy.generate(batch, sampling)
        return sum(len(c.token_ids) for c in out) / (time.perf_counter() - t0)

    for policy in policies.values():     # untimed warm-up
        tokens_per_s(policy)
    runs: dict[str, list[float]] = {dtype: [] for dtype in policies}
    for _ in range(args.repeats):
        for dtype, policy in policies.items():
            runs[dtype].append(tokens_per_s(policy))
    rate = {dtype: statistics.median(r) for dtype, r in runs.items()}
    print(f"{len(batch)} prompts of {args.prompt} tokens ({args.tasks} shared x {args.group}), "
          f"{args.new_tokens} new tokens; CPU bf16 native: {native_bf16('cpu')}; "
          f"torch threads {torch.get_num_threads()}")
    for dtype, r in runs.items():
        print(f"{dtype:9s}: {rate[dtype]:7.1f} tokens/s  runs {[round(x, 1) for x in r]}")
    print(f"bench_generation: bf16_over_fp32={rate['bfloat16'] / rate['float32']:.2f}")


if __name__ == "__main__":
    main()
