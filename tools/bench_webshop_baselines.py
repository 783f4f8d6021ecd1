"""Scripted WebShop baselines on the eval goals: oracle, rule and random agents.

    python tools/bench_webshop_baselines.py [--goals 200] [--products 1000]

- oracle: the environment's walkthrough (should score 1.0 on every goal);
- rule: the original paper's rule baseline: search the instruction, open the first
  result, buy it without choosing options;
- random: search the instruction, then random admissible clicks until it buys or hits
  the step limit (15, as registered), where the episode scores 0.

Prints mean score (x100, as papers report it) and success rate for each. For an LLM:
``agentgym eval configs/webshop_grpo.yaml eval.tasks=N``.
"""

from __future__ import annotations

import argparse
import random
import statistics

import agentgym


def play(env, policy, goal_index: int, rng: random.Random) -> tuple[float, bool]:
    obs, info = env.reset(options={"goal_index": goal_index})
    plan = policy(env.unwrapped, info, rng)
    terminated = truncated = False
    while not (terminated or truncated):
        action = plan(info)
        obs, reward, terminated, truncated, info = env.step(action)
    return info["task_score"], info["won"]


def oracle(shop_env, info, rng):
    actions = list(shop_env.walkthrough())
    return lambda info: actions.pop(0)


def rule(shop_env, info, rng):
    task = info["task"]

    def act(info):
        if info["page"] == "search":
            return f"search[{task}]"
        if info["page"] == "results":
            products = [a for a in info["admissible_actions"] if a.startswith("click[b0")]
            return products[0] if products else "click[back to search]"
        return "click[buy now]"
    return act


def random_agent(shop_env, info, rng):
    task = info["task"]

    def act(info):
        if info["page"] == "search":
            return f"search[{task}]"
        return rng.choice(info["admissible_actions"])
    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--goals", type=int, default=200)
    parser.add_argument("--products", type=int, default=1000)
    args = parser.parse_args()
    env = agentgym.make("agentgym/WebShop-v0", num_products=args.products, split="eval")
    for name, policy in (("oracle", oracle), ("rule", rule), ("random", random_agent)):
        rng = random.Random(0)
        results = [play(env, policy, i, rng) for i in range(args.goals)]
        score = 100 * statistics.mean(s for s, _ in results)
        success = 100 * statistics.mean(w for _, w in results)
        print(f"{name:7s} score {score:5.1f}  success {success:5.1f}%  ({args.goals} eval goals, "
              f"{args.products} products)")
    env.close()


if __name__ == "__main__":
    main()
