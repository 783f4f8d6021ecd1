"""Steps per second of agentgym/MiniWoB-v0 with 1 and with 4 parallel environments.

    python tools/bench_miniwob.py [--steps 60] [--task click-test]

Each environment plays the scripted solver's actions (resets included in the time);
4 environments step from 4 threads, each with its own browser, started before timing.
The last line is ``bench_miniwob: steps_per_s_1=<x> steps_per_s_4=<y>``.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import agentgym


def play(env, steps: int, seed0: int) -> int:
    done_steps, seed = 0, seed0
    while done_steps < steps:
        env.reset(seed=seed)
        seed += 1
        for action in env.unwrapped.walkthrough() or ["noop()"]:
            _, _, terminated, truncated, _ = env.step(action)
            done_steps += 1
            if terminated or truncated:
                break
    return done_steps


def steps_per_s(n_envs: int, steps: int, task: str) -> float:
    envs = [agentgym.make("agentgym/MiniWoB-v0", task=task, screenshot=False)
            for _ in range(n_envs)]
    try:
        with ThreadPoolExecutor(n_envs) as pool:
            list(pool.map(lambda e: e.reset(seed=0), envs))  # start the browsers untimed
            t0 = time.perf_counter()
            total = sum(pool.map(lambda ie: play(ie[1], steps, 1000 * ie[0]), enumerate(envs)))
            return total / (time.perf_counter() - t0)
    finally:
        for env in envs:
            env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per environment")
    parser.add_argument("--task", default="suite:simple")
    args = parser.parse_args()
    one = steps_per_s(1, args.steps, args.task)
    four = steps_per_s(4, args.steps, args.task)
    print(f"bench_miniwob: steps_per_s_1={one:.1f} steps_per_s_4={four:.1f}")


if __name__ == "__main__":
    main()
