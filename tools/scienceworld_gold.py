"""How long the engine's gold action sequences are, task by task, and whether they win
through agentgym/ScienceWorld-v0: the measurement behind the ``easy`` and ``short`` suites.

    python tools/scienceworld_gold.py [--task suite:all] [--train 2] [--test 1]

For every task it plays the gold walkthrough of the first ``--train`` train variations
and the first ``--test`` test variations and prints the steps each needed to win (a step
limit of 300). Last line: ``scienceworld_gold: won=<w>/<n> tasks=<t>``.
"""

from __future__ import annotations

import argparse

import agentgym


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="suite:all")
    parser.add_argument("--train", type=int, default=2)
    parser.add_argument("--test", type=int, default=1)
    args = parser.parse_args()
    env = agentgym.make("agentgym/ScienceWorld-v0", task=args.task, max_episode_steps=300)
    train = agentgym.make("agentgym/ScienceWorld-v0", task=args.task, split="train").unwrapped
    test = agentgym.make("agentgym/ScienceWorld-v0", task=args.task, split="test").unwrapped
    won = played = 0
    try:
        for task in env.unwrapped.tasks:
            env.reset(options={"task": task})  # starts the JVM that fills the split table
            picks = train.variations(task)[:args.train] + test.variations(task)[:args.test]
            cells = []
            for variation in picks:
                env.reset(options={"task": task, "variation": variation})
                steps, info = 0, {}
                for action in env.unwrapped.walkthrough():
                    _, _, terminated, truncated, info = env.step(action)
                    steps += 1
                    if terminated or truncated:
                        break
                played += 1
                won += int(info.get("won", False))
                cells.append(f"v{variation}: {steps}{'' if info.get('won') else ' (not won)'}")
            print(f"{task:48s} {', '.join(cells)}", flush=True)
    finally:
        env.close()
    print(f"scienceworld_gold: won={won}/{played} tasks={len(env.unwrapped.tasks)}")


if __name__ == "__main__":
    main()
