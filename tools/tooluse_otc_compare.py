"""GRPO vs OTC-GRPO on ToolUse-v0: tool calls per episode and accuracy, side by side.

    python tools/tooluse_otc_compare.py [--iterations 4] [key=value ...]

Trains configs/tooluse_grpo.yaml twice from the same seed: once as is, once with the
episode outcome replaced by the OTC-GRPO reward (``agentgym.algos.otc``). Until
``algorithm.reward.otc`` is wired into ``agentgym.credit``, the OTC run routes the
trainer's credit assignment through ``otc_step_rewards`` here. Prints, per iteration,
the training rollouts' tool calls per episode, accuracy and tool productivity.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

import agentgym.trainer as trainer_module
from agentgym.algos.otc import OTCState, episode_tool_calls, otc_step_rewards, tool_use_metrics
from agentgym.config import load_config
from agentgym.credit import trainable
from agentgym.store import EpisodeStore


def otc_credit(original, state: OTCState, max_tool_calls: int, alpha: float):
    """``assign_advantages`` with each episode's outcome replaced by its OTC-GRPO reward."""

    def assign(episodes, cfg, *args, **kwargs):
        eps = trainable(episodes)
        metrics = {}
        if eps:
            flat = [s.reward for ep in eps for s in ep.steps]
            new, metrics = otc_step_rewards(flat, [len(ep.steps) for ep in eps], eps, "grpo",
                                            max_tool_calls, alpha, state)
            for step, r in zip((s for ep in eps for s in ep.steps), new):
                step.reward = float(r)
        return {**original(episodes, cfg, *args, **kwargs), **metrics}

    return assign


def run(name: str, overrides: list[str], otc: bool, out: Path) -> dict[int, dict[str, float]]:
    run_dir = out / name
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = load_config("configs/tooluse_grpo.yaml", overrides + [f"logging.run_dir={run_dir}"])
    original = trainer_module.assign_advantages
    if otc:
        budget = int(cfg.env.kwargs.get("max_tool_calls", 3))
        trainer_module.assign_advantages = otc_credit(original, OTCState(), budget, 1.0)
    try:
        trainer = trainer_module.Trainer(cfg)
        try:
            trainer.train()
        finally:
            trainer.close()
    finally:
        trainer_module.assign_advantages = original
    rows: dict[int, dict[str, float]] = {}
    with EpisodeStore(run_dir / "episodes.db") as store:
        episodes = [store.get_episode(s.episode_id) for s in store.query(split="train", limit=100_000)]
    for it in sorted({ep.iteration for ep in episodes}):
        eps = [ep for ep in episodes if ep.iteration == it]
        rows[it] = tool_use_metrics([episode_tool_calls(ep) for ep in eps], [ep.won for ep in eps])
        rows[it]["episodes"] = len(eps)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--out", default="runs/tooluse_compare")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    overrides = [f"trainer.iterations={args.iterations}", "eval.tasks=0",
                 f"trainer.checkpoint_every={args.iterations}", *args.overrides]
    out = Path(args.out)
    results = {name: run(name, overrides, otc, out) for name, otc in (("grpo", False), ("otc_grpo", True))}
    print(f"{'run':10} {'iter':>4} {'episodes':>8} {'calls/ep':>9} {'accuracy':>9} {'productivity':>12}")
    for name, rows in results.items():
        for it, m in rows.items():
            prod = m.get("tool/productivity", float("nan"))
            print(f"{name:10} {it:>4} {int(m['episodes']):>8} {m['tool/calls_per_episode']:>9.2f} "
                  f"{m['tool/accuracy']:>9.2f} {prod:>12.2f}")
        calls = np.mean([m["tool/calls_per_episode"] for m in rows.values()])
        acc = np.mean([m["tool/accuracy"] for m in rows.values()])
        print(f"{name:10} mean over iterations: calls/ep {calls:.2f}, accuracy {acc:.2f}")


if __name__ == "__main__":
    main()
