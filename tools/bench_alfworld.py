"""Stock ALFWorld engine vs ours, on the same games and the same action sequences.

For each game (one per task type from the generated train suite, ALFWorld-sized
scenes): a random-admissible action sequence is recorded on the stock engine (textworld
PddlEnv + alfworld's AlfredDemangler), then replayed on ours; every observation,
admissible-command list and won flag must be equal, or the script fails.

- step: mean time of one step along the sequence;
- reset (cold): what starting an episode of a game not seen before costs. Stock ALFWorld
  loads the game file and resets (``load`` + ``reset``); ours loads and resets with every
  per-process cache emptied first;
- reset (warm): resetting the game that is already loaded (stock: ``reset``).

Usage: ``python tools/bench_alfworld.py [--games 6] [--steps 30] [--cache-dir DIR]``.
The last line is ``bench_alfworld: step_ratio=<x> reset_ratio=<y>`` (cold reset).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time


def _clear_caches() -> None:
    from agentgym.envs.alfworld import engine

    for fn in (engine._symbols, engine._query, engine._logic_for_template, engine._convert,
               engine._convert_on_disk):
        fn.cache_clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", type=int, default=6)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)

    import textworld
    from agentgym.envs.alfworld import engine, suite

    games = [suite.ensure_game("train", i, args.cache_dir) for i in range(args.games)]
    infos = textworld.EnvInfos(won=True, admissible_commands=True)
    stock = engine.stock_engine(infos)
    ours = engine.FastPddlEnv()
    rng = random.Random(args.seed)
    stock_step, ours_step, stock_cold, ours_cold, stock_warm, ours_warm = [], [], [], [], [], []
    for game in games:
        data = game.load()
        t = time.perf_counter()
        stock.load(str(game.path))
        s = stock.reset()
        stock_cold.append(time.perf_counter() - t)
        _clear_caches()
        t = time.perf_counter()
        ours.load(data)
        o = ours.reset()
        ours_cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        stock.reset()
        stock_warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        ours.reset()
        ours_warm.append(time.perf_counter() - t)
        s, o = stock.reset(), ours.reset()
        actions = []
        for _ in range(args.steps):
            if s["feedback"] != o["feedback"] or s["admissible_commands"] != o["admissible_commands"] \
                    or bool(s["won"]) != bool(o["won"]):
                print(f"MISMATCH in {game.task_id} after {actions}", file=sys.stderr)
                return 1
            if s["won"]:
                break
            action = rng.choice(s["admissible_commands"])
            actions.append(action)
            t = time.perf_counter()
            s, _, _ = stock.step(action)
            stock_step.append(time.perf_counter() - t)
            t = time.perf_counter()
            o, _, _ = ours.step(action)
            ours_step.append(time.perf_counter() - t)
        n_objects = data["pddl_problem"].count(" - object")
        n_receptacles = data["pddl_problem"].count(" - receptacle")
        print(f"{game.task_type:32s} {n_receptacles:3d} receptacles {n_objects:3d} objects  "
              f"{len(actions)} steps equal")

    def ms(xs):
        return 1000 * statistics.mean(xs)

    print(f"step        stock {ms(stock_step):8.1f} ms  ours {ms(ours_step):8.2f} ms")
    print(f"reset cold  stock {ms(stock_cold):8.1f} ms  ours {ms(ours_cold):8.1f} ms")
    print(f"reset warm  stock {ms(stock_warm):8.1f} ms  ours {ms(ours_warm):8.1f} ms  "
          f"(ratio {ms(stock_warm) / ms(ours_warm):.1f})")
    step_ratio = ms(stock_step) / ms(ours_step)
    reset_ratio = ms(stock_cold) / ms(ours_cold)
    print(f"bench_alfworld: step_ratio={step_ratio:.1f} reset_ratio={reset_ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
