"""Reset and step latency of agentgym/ScienceWorld-v0, and how 4 environments in 4 worker
processes compare with 1.

    python tools/bench_scienceworld.py [--episodes 4] [--steps 12] [--task suite:easy]

Each environment plays the same ``--episodes`` episodes (seeds 0, 1, ...: one task type
after another) of up to ``--steps`` random admissible actions (the same seeded choices)
through
``EnvPool(backend="process")``; every environment's JVM is started by an untimed first
reset. ``step_ms`` and ``reset_ms`` are the mean time one call takes inside its worker
with 1 environment; ``parallel_ratio`` is the steps per second of 4 environments over
that of 1 (4.0 would be perfect scaling; a 2-core machine cannot exceed ~2).

Last line: ``bench_scienceworld: step_ms=<x> reset_ms=<y> parallel_ratio=<z>``.
"""

from __future__ import annotations

import argparse
import random
import time

from agentgym.envpool import EnvMaker, EnvPool


def run(n_envs: int, episodes: int, steps: int, task: str) -> dict[str, float]:
    maker = EnvMaker.of("agentgym/ScienceWorld-v0", {"task": task}, steps)
    pool = EnvPool(maker, workers=n_envs, backend="process", timeout_s=600)
    rngs = {slot: random.Random(0) for slot in range(n_envs)}  # every env: the same work
    reset_s, step_s, resets, stepped = 0.0, 0.0, 0, 0
    try:
        _values(pool.reset({slot: 10_000 + slot for slot in range(n_envs)}))  # JVMs start
        t0 = time.perf_counter()
        for episode in range(episodes):
            out = pool.reset({slot: episode for slot in range(n_envs)})
            reset_s += sum(o.seconds for o in out.values())
            resets += len(out)
            infos = {slot: value[1] for slot, value in _values(out).items()}
            while infos:
                actions = {slot: rngs[slot].choice(info["admissible_actions"])
                           for slot, info in infos.items()}
                out = pool.step(actions)
                step_s += sum(o.seconds for o in out.values())
                stepped += len(out)
                infos = {slot: v[4] for slot, v in _values(out).items() if not (v[2] or v[3])}
        wall = time.perf_counter() - t0
    finally:
        pool.close()
    return {"step_ms": 1000 * step_s / stepped, "reset_ms": 1000 * reset_s / resets,
            "calls_per_s": (stepped + resets) / wall}


def _values(outcomes) -> dict:
    failed = [o.error for o in outcomes.values() if o.error]
    if failed:
        raise SystemExit(f"bench_scienceworld: an environment failed: {failed[0]}")
    return {slot: o.value for slot, o in outcomes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=4, help="episodes per environment")
    parser.add_argument("--steps", type=int, default=12, help="step limit per episode")
    parser.add_argument("--task", default="suite:easy")
    args = parser.parse_args()
    one = run(1, args.episodes, args.steps, args.task)
    four = run(4, args.episodes, args.steps, args.task)
    for label, r in (("1 env", one), ("4 envs", four)):
        print(f"{label}: step {r['step_ms']:.1f} ms, reset {r['reset_ms']:.1f} ms, "
              f"{r['calls_per_s']:.1f} calls/s")
    ratio = four["calls_per_s"] / one["calls_per_s"]
    print(f"bench_scienceworld: step_ms={one['step_ms']:.1f} reset_ms={one['reset_ms']:.1f} "
          f"parallel_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
