"""How fast the replay viewer's pages load on a large store.

Builds (or reuses, with --db) a run directory holding N synthetic episodes (default
100,000: 8-member groups, 1-6 steps each, realistic token arrays), then times the episode
list (several filters and a deep page) and episode pages through real HTTP requests to the
aiohttp app. The same pages on a 1,000-episode store run side by side, so the ratio shows
how load time scales with store size on this (noisy, shared) machine.

    python tools/bench_viewer.py [--episodes 100000] [--db DIR]

Last line: ``bench_viewer: list_ms=<x> episode_ms=<y>`` (the slowest page of each kind,
median of its repeats, on the large store; the goal is < 1000 ms each).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from aiohttp.test_utils import TestClient, TestServer

from agentgym.episode import FAILURE, MAX_STEPS, SUCCESS, Episode, Step
from agentgym.replay.run import Run
from agentgym.replay.web import make_app
from agentgym.store import EpisodeStore

GROUP, TASKS = 8, 8
TASK_TYPES = [f"type{i}" for i in range(6)]


def synthetic_episode(n: int, rng: np.random.Generator, system: list[int]) -> Episode:
    iteration, rest = divmod(n, GROUP * TASKS)
    task, member = divmod(rest, GROUP)
    won = bool(rng.random() < 0.3)
    steps = []
    for k in range(int(rng.integers(1, 7))):
        r = int(rng.integers(8, 64))
        steps.append(Step(
            index=k, observation=f"You are in room {k}. " + "There is a table here. " * 8,
            prompt_ids=system + rng.integers(0, 49_000, 96 * (k + 1)).tolist(),
            response_ids=rng.integers(0, 49_000, r).tolist(),
            logprobs=(-rng.random(r)).astype(np.float32).tolist(),
            entropies=rng.random(r).astype(np.float32).tolist(),
            response_text="<action>go north</action>", action="go north",
            action_valid=bool(rng.random() < 0.9), reward=0.0, anchor=f"room{k}|t{task}",
            timings={"generate_s": 0.5, "env_s": 0.01}, advantage=float(rng.normal()),
            advantage_parts={"episode": 0.5, "step": float(rng.normal())}))
    termination = SUCCESS if won else (FAILURE if rng.random() < 0.5 else MAX_STEPS)
    return Episode(run_id="bench", iteration=iteration, split="eval" if task == 0 else "train",
                   group_id=f"{iteration}-{task}", episode_id=f"bench-{iteration}-{task}-{member}",
                   env_id="agentgym/Bench-v0", task_id=f"task{task}", seed=n // GROUP,
                   steps=steps, won=won, total_reward=float(won), termination=termination,
                   error="EnvError: boom" if rng.random() < 0.01 else None,
                   task_type=TASK_TYPES[task % len(TASK_TYPES)],
                   final_observation="The end.")


def build(run_dir: Path, n: int) -> None:
    with EpisodeStore(run_dir) as store:
        have = store.count()
        if have >= n:
            return
        rng = np.random.default_rng(have)
        system = list(range(256))
        t0 = time.perf_counter()
        for start in range(have, n, 1000):
            store.add_episodes([synthetic_episode(i, rng, system)
                                for i in range(start, min(n, start + 1000))])
            print(f"  built {min(n, start + 1000)}/{n} episodes "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    (run_dir / "config.yaml").write_text("env: {id: agentgym/Bench-v0}\n"
                                         "model: {name: smollm2-135m}\n")


async def time_pages(run_dir: Path, repeats: int) -> dict[str, float]:
    run = Run(run_dir)
    tokenizer = run.tokenizer is not None  # loaded once, outside the timings
    last = run.store.query(limit=1, order="-length,-episode")[0]  # most steps: the worst case
    middle = run.store.query(limit=1, offset=run.store.count() // 2, order="episode")[0]
    pages = {"list": "/episodes", "list lost train": "/episodes?outcome=lost&split=train",
             "list type+termination": "/episodes?task_type=type3&termination=failure",
             "list errors": "/episodes?error=yes",
             "list middle page": f"/episodes?page={run.store.count() // 100}",
             "episode longest": f"/episode?id={last.episode_id}",
             "episode middle": f"/episode?id={middle.episode_id}",
             "anchor group": f"/anchor?episode={middle.episode_id}&step=0",
             "overview (no goal)": "/"}
    out = {}
    async with TestClient(TestServer(make_app(run))) as client:
        for name, path in pages.items():
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                response = await client.get(path)
                await response.read()
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status == 200, (path, response.status)
            out[name] = statistics.median(times)
    run.close()
    out["tokenizer"] = float(tokenizer)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="run directory to build in / reuse")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = args.db or Path(tmp) / "big"
        small = Path(tmp) / "small"
        build(big, args.episodes)
        build(small, 1000)
        large = asyncio.run(time_pages(big, args.repeats))
        base = asyncio.run(time_pages(small, args.repeats))
    print(f"tokenizer loaded: {bool(large.pop('tokenizer'))} "
          f"(token text in heatmaps; else token ids)")
    base.pop("tokenizer")
    print(f"{'page':<24}{'1k ms':>10}{f'{args.episodes // 1000}k ms':>10}{'ratio':>8}")
    for name in large:
        print(f"{name:<24}{base[name]:>10.1f}{large[name]:>10.1f}"
              f"{large[name] / base[name]:>8.2f}")
    list_ms = max(v for k, v in large.items() if k.startswith("list"))
    episode_ms = max(v for k, v in large.items() if k.startswith(("episode", "anchor")))
    print(f"bench_viewer: list_ms={list_ms:.1f} episode_ms={episode_ms:.1f}")


if __name__ == "__main__":
    main()
