"""ALFWorld environments stepped in parallel: the thread pool against the process pool.

16 ALFWorld-v0 environments (eval_unseen games) are reset and then take 10 random
admissible actions each, once through ``EnvPool(backend="thread")`` (4 threads) and
once through ``EnvPool(backend="process")`` (one worker process per environment).

    python tools/bench_envpool.py [--envs 16] [--steps 10]

Last line: ``bench_envpool: step_ratio=<thread step time / process step time>``.
"""

from __future__ import annotations

import argparse
import random
import time

from agentgym.rollout.envpool import EnvMaker, EnvPool


def run(backend: str, envs: int, steps: int) -> tuple[float, float]:
    maker = EnvMaker.of("agentgym/ALFWorld-v0", {"split": "eval_unseen", "num_games": 12})
    pool = EnvPool(maker, workers=envs if backend == "process" else 4, backend=backend, timeout_s=300)
    rng = random.Random(0)
    try:
        t0 = time.perf_counter()
        out = pool.reset({i: i for i in range(envs)})
        reset_s = time.perf_counter() - t0
        infos = {i: o.value[1] for i, o in out.items() if o.error is None}
        t0 = time.perf_counter()
        for _ in range(steps):
            out = pool.step({i: rng.choice(sorted(info["admissible_actions"])) for i, info in infos.items()})
            failed = [o.error for o in out.values() if o.error]
            if failed:
                raise RuntimeError(f"{backend} pool: {failed[0]}")
            infos = {i: o.value[4] for i, o in out.items() if not (o.value[2] or o.value[3])}
        return reset_s, time.perf_counter() - t0
    finally:
        pool.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    times = {}
    for backend in ("thread", "process"):
        reset_s, step_s = times[backend] = run(backend, args.envs, args.steps)
        print(f"{backend:8s}: {args.envs} resets {reset_s:6.1f} s (first loads included), "
              f"{args.steps} steps x {args.envs} envs {step_s:6.1f} s")
    print(f"bench_envpool: step_ratio={times['thread'][1] / times['process'][1]:.2f}")


if __name__ == "__main__":
    main()
