"""WebShop speed: search latency at 100,000 products, and the latency of other steps.

    python tools/bench_webshop.py [--products 100000] [--queries 300]

Goals (issue 7): search <= 5 ms, other steps <= 1 ms. The catalogue and its BM25 index
are built on first use and cached (``$AGENTGYM_CACHE/webshop``); build times are printed
separately and are not part of the step figures. Queries are the goals' instructions
(what an agent that pastes the instruction would search) and product titles.
Last line: ``bench_webshop: search_ms=<x> step_ms=<y>``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from agentgym.envs.webshop.catalog import generate_catalog
from agentgym.envs.webshop.env import WebShopEnv
from agentgym.envs.webshop.goals import make_goal
from agentgym.envs.webshop.search import SearchEngine

SEARCH_GOAL_MS, STEP_GOAL_MS = 5.0, 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()

    t0 = time.perf_counter()
    catalog = generate_catalog(args.products)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = SearchEngine(catalog)
    index_s = time.perf_counter() - t0
    print(f"catalogue: {len(catalog)} products ready in {gen_s:.1f} s (generated, or loaded "
          f"from the disk cache); index "
          f"{'loaded' if engine.loaded_from_cache else 'built'} in {index_s:.1f} s")

    rng = random.Random(0)
    queries = [make_goal(catalog, "eval", i).instruction_text for i in range(args.queries // 2)]
    queries += [rng.choice(catalog.products).title for _ in range(args.queries - len(queries))]
    engine.search(queries[0])  # warm-up
    times = []
    for q in queries:
        t0 = time.perf_counter()
        engine.search(q)
        times.append(1000 * (time.perf_counter() - t0))
    search_ms = statistics.mean(times)
    half = args.queries // 2
    print(f"search: instructions as queries {statistics.mean(times[:half]):.2f} ms, "
          f"product titles {statistics.mean(times[half:]):.2f} ms (means)")
    print(f"search: mean {search_ms:.2f} ms, median {statistics.median(times):.2f} ms, "
          f"max {max(times):.2f} ms over {len(times)} queries "
          f"({search_ms / SEARCH_GOAL_MS:.2f}x the 5 ms goal)")

    # other steps: the oracle's clicks (results -> item -> options -> buy), plus a
    # features/reviews detour, in full environment steps with info and admissible actions
    env = WebShopEnv(num_products=args.products, split="eval")
    step_times, reset_times, wins = [], [], 0
    for episode in range(args.episodes):
        t0 = time.perf_counter()
        env.reset(options={"goal_index": episode})
        reset_times.append(1000 * (time.perf_counter() - t0))
        plan = env.walkthrough()
        plan = plan[:-1] + ["click[features]", "click[< prev]", "click[reviews]", "click[< prev]",
                            plan[-1]]
        for action in plan:
            t0 = time.perf_counter()
            *_, info = env.step(action)
            ms = 1000 * (time.perf_counter() - t0)
            if not action.startswith("search["):
                step_times.append(ms)
        wins += info["won"]
    step_ms = statistics.mean(step_times)
    print(f"steps (not search): mean {step_ms:.3f} ms, median {statistics.median(step_times):.3f} ms "
          f"over {len(step_times)} steps ({step_ms / STEP_GOAL_MS:.2f}x the 1 ms goal); "
          f"reset mean {statistics.mean(reset_times):.2f} ms; the oracle won {wins}/{args.episodes}")
    print(f"bench_webshop: search_ms={search_ms:.2f} step_ms={step_ms:.3f}")


if __name__ == "__main__":
    main()
