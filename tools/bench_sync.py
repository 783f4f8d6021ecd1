"""Seconds per iteration that the vLLM backend spends syncing the trained weights.

LoRA: save the adapter, then the next generation loads it as a new ``LoRARequest``.
Full fine-tuning: write the weights as safetensors and reload them into the running
engine in place (plus a prefix-cache reset). Each measured iteration changes the
weights (as an optimizer step would), syncs, and generates one token from a fixed
prompt, so the adapter load that vLLM defers to the next request is counted; the
same one-token generation without a sync is measured and subtracted.

    python tools/bench_sync.py [--model smollm2-135m] [--iterations 5]

Last line: ``bench_sync: lora_s=<x> full_s=<y>``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from agentgym.policy import SamplingParams, make_policy
from agentgym.policy.models import DEFAULT_LORA_TARGETS


def one_token(policy, prompt) -> float:
    t0 = time.perf_counter()
    policy.generate([prompt], SamplingParams(max_new_tokens=1, temperature=1.0))
    return time.perf_counter() - t0


def seconds_per_sync(policy, iterations: int) -> tuple[float, float]:
    model = policy.model
    prompt = policy.encode_chat([{"role": "user", "content": "Open the door and take the key."}])
    trained = [p for p in model.parameters() if p.requires_grad]
    one_token(policy, prompt)
    baseline = statistics.median(one_token(policy, prompt) for _ in range(3))
    costs = []
    for it in range(1, iterations + 1):
        with torch.no_grad():
            for p in trained:
                p.add_(torch.randn_like(p), alpha=1e-4)
        t0 = time.perf_counter()
        policy.sync_weights(model, it)
        policy.generate([prompt], SamplingParams(max_new_tokens=1, temperature=1.0))
        costs.append(time.perf_counter() - t0 - baseline)
    return statistics.median(costs), baseline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--engine-dtype", default="auto")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    results = {}
    for kind in ("lora", "full"):
        lora = {"r": args.lora_r, "alpha": 2 * args.lora_r, "target_modules": DEFAULT_LORA_TARGETS} \
            if kind == "lora" else None
        policy = make_policy(args.model, backend="vllm", lora=lora, seed=0, engine_dtype=args.engine_dtype)
        try:
            trained = sum(p.numel() for p in policy.model.parameters() if p.requires_grad)
            results[kind], baseline = seconds_per_sync(policy, args.iterations)
            print(f"{kind:4s}: {trained / 1e6:7.2f} M trained parameters, engine {policy.engine_dtype}: "
                  f"{results[kind]:.3f} s per sync (median of {args.iterations}; "
                  f"one-token generation {baseline:.3f} s subtracted)", flush=True)
        finally:
            policy.close()
    print(f"bench_sync: lora_s={results['lora']:.3f} full_s={results['full']:.3f}")


if __name__ == "__main__":
    main()
