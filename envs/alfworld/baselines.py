"""Policy-free ALFWorld baselines by task type: the planner expert and random admissible.

``python -m agentgym.envs.alfworld.baselines --split eval_seen --size 140`` plays every
game of the suite once with each policy (50-step limit, as the environment registers)
and prints success by task type. The expert is a check on the generator (≈100 % by
construction); random-admissible is the floor a trained agent must beat. Model policies
(SmolLM2 zero-shot, trained checkpoints) go through ``agentgym eval``.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict

POLICIES = ("expert", "random")


def play(policy: str, split: str, size: int, cache_dir: str | None = None, seed: int = 0,
         max_episode_steps: int = 50) -> dict[str, tuple[int, int]]:
    """task type -> (episodes, wins) for ``policy`` over games ``0..size-1`` of ``split``."""
    import agentgym

    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    rng = random.Random(seed)
    env = agentgym.make("agentgym/ALFWorld-v0", split=split, num_games=size, cache_dir=cache_dir,
                        max_episode_steps=max_episode_steps)
    results: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    try:
        for index in range(size):
            _, info = env.reset(options={"game_index": index})
            plan = list(env.unwrapped.walkthrough() or []) if policy == "expert" else []
            done = False
            while not done:
                if policy == "expert":
                    action = plan.pop(0) if plan else "look"
                else:
                    action = rng.choice(info["admissible_actions"] or ["look"])
                _, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            row = results[info["task_type"]]
            row[0] += 1
            row[1] += int(info["won"])
    finally:
        env.close()
    return {k: (n, w) for k, (n, w) in results.items()}


def main(argv: list[str] | None = None) -> int:
    from agentgym.envs.alfworld import TASK_TYPES
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="eval_seen")
    parser.add_argument("--size", type=int, default=12)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = Table(title=f"ALFWorld {args.split}, {args.size} games: success by task type")
    table.add_column("task type")
    rows = {}
    for policy in POLICIES:
        table.add_column(policy, justify="right")
        rows[policy] = play(policy, args.split, args.size, args.cache_dir, args.seed)
    for task_type in TASK_TYPES + ("all",):
        cells = []
        for policy in POLICIES:
            if task_type == "all":
                n = sum(v[0] for v in rows[policy].values())
                w = sum(v[1] for v in rows[policy].values())
            else:
                n, w = rows[policy].get(task_type, (0, 0))
            cells.append(f"{w}/{n} ({w / n:.0%})" if n else "-")
        table.add_row(task_type, *cells)
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
