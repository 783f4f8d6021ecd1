"""Tree rollouts against independent chains, at an equal number of leaves per task.

Same model, TextWorld tasks, seeds and sampling for every strategy; each task gets 8
leaf trajectories: ``chain`` (8 independent episodes), ``tree_grpo`` (2 trees, 1 round
of 3 expansions), ``treepo`` (2 paths forking in two every turn up to 8 leaves) and
``arpo`` (4 chains, entropy branching up to 8, refill). For each: generated tokens,
prefill tokens computed, env steps played and replayed, forks and wall-clock, side by
side from the budget ledger. Then the cost of one fork at depth ``--fork-depth`` on
WebShop (the env here with a snapshot): replaying the prefix vs restoring a snapshot.

    python tools/bench_tree.py [--tasks 4] [--steps 6] [--max-new-tokens 16] [--model smollm2-135m]

Last line: ``bench_tree: tree_grpo_tokens=<chain/tree> treepo_tokens=<chain/tree>
arpo_tokens=<chain/tree> fork_replay_ms=<x> fork_snapshot_ms=<y>`` (token goal >= 1.3).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import agentgym
from agentgym.config import BranchingConfig, TreeConfig
from agentgym.policy import make_policy
from agentgym.policy.base import SamplingParams
from agentgym.prompting import template_for
from agentgym.rollout import RolloutEngine, RolloutSettings
from agentgym.rollout.envpool import EnvMaker, EnvPool
from agentgym.rollout.strategies import make_strategy

ENV_ID = "agentgym/TextWorld-v0"
GAME = {"family": "custom", "world_size": 2, "nb_objects": 4, "quest_length": 2, "num_games": 8}
LEAVES = 8
SHAPES = {"chain": {}, "tree_grpo": {"trees": 2, "rounds": 1, "expansions": 3},
          "treepo": {"width": 2, "branch": 2, "leaves": LEAVES}, "arpo": {}}


def rollout(policy, name: str, seeds: list[int], args):
    policy.generator.manual_seed(args.seed)
    pool = EnvPool(EnvMaker.of(ENV_ID, GAME, args.steps), workers=2, timeout_s=120)
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=1.0,
                              stop_strings=["</action>"])
    strategy = make_strategy(name, LEAVES, TreeConfig(**SHAPES[name]),
                             BranchingConfig(budget=LEAVES, initial=LEAVES // 2), seed=args.seed)
    engine = RolloutEngine(policy, pool, template_for(ENV_ID),
                           RolloutSettings(group_size=LEAVES, think=False, sampling=sampling),
                           env_id=ENV_ID, strategy=strategy)
    try:
        episodes = engine.run(seeds)
    finally:
        pool.close()
    counts = {}
    for ep in episodes:
        counts[ep.group_id] = counts.get(ep.group_id, 0) + 1
    assert set(counts.values()) == {LEAVES}, f"{name}: leaves per task {counts}"
    return engine.budget, episodes


def fork_cost(depth: int, repeats: int) -> tuple[float, float]:
    """Milliseconds per fork at ``depth`` on WebShop: replay vs snapshot (medians)."""
    make = EnvMaker.of("agentgym/WebShop-v0", {"num_products": 200})
    probe = make()
    probe.reset(seed=1)
    plan = probe.unwrapped.walkthrough()
    probe.close()
    # oracle actions, padded with moves that keep the session going (clicks back and forth)
    actions = (plan[:-1] + ["click[< prev]", "click[description]"] * depth)[:depth]
    out = {}
    for snapshots in (False, True):
        pool = EnvPool(make, workers=1, timeout_s=120)
        pool.keep_snapshots = snapshots
        try:
            pool.reset({0: 1})
            for a in actions:
                pool.step({0: a})
            pool.fork({1: (0, depth)})   # warm: the child's env exists
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                result = pool.fork({1: (0, depth)})[1]
                times.append(1000 * (time.perf_counter() - t0))
                assert not result.error, result.error
        finally:
            pool.close()
        out[snapshots] = statistics.median(times)
    return out[False], out[True]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6, help="max steps per episode")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fork-depth", type=int, default=8)
    parser.add_argument("--fork-repeats", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    policy = make_policy(args.model, seed=args.seed)
    seeds = list(range(args.tasks))
    budgets = {}
    print(f"{'strategy':10} {'leaves':>6} {'gen tokens':>10} {'prefill':>9} {'reused':>8} "
          f"{'env steps':>9} {'replayed':>8} {'forks':>5} {'wall s':>7} {'success':>7}")
    for name in SHAPES:
        budget, episodes = rollout(policy, name, seeds, args)
        budgets[name] = budget
        wins = sum(ep.won for ep in episodes) / len(episodes)
        print(f"{name:10} {len(episodes):6d} {budget.generated_tokens:10d} "
              f"{budget.prefill_tokens:9.0f} {budget.prefill_reused:8.0f} {budget.env_steps:9d} "
              f"{budget.env_steps_replayed:8d} {budget.forks:5d} {budget.wall_s:7.1f} {wins:7.2f}")
    replay_ms, snapshot_ms = fork_cost(args.fork_depth, args.fork_repeats)
    print(f"WebShop fork at depth {args.fork_depth}: replay {replay_ms:.2f} ms, "
          f"snapshot {snapshot_ms:.2f} ms ({replay_ms / snapshot_ms:.1f}x)")
    chain = budgets["chain"].generated_tokens
    ratio = {n: chain / max(1, budgets[n].generated_tokens) for n in ("tree_grpo", "treepo", "arpo")}
    print(f"bench_tree: tree_grpo_tokens={ratio['tree_grpo']:.2f} treepo_tokens={ratio['treepo']:.2f} "
          f"arpo_tokens={ratio['arpo']:.2f} fork_replay_ms={replay_ms:.2f} "
          f"fork_snapshot_ms={snapshot_ms:.2f}")


if __name__ == "__main__":
    main()
