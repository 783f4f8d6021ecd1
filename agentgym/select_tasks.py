"""``agentgym select-tasks``: measure the base policy's success per task and keep the
tasks it solves at least sometimes (ARPO's task selection).

The policy plays ``episodes`` episodes of every task with the training sampling
settings (distinct seeds, groups of one). For an environment with a ``tasks`` list
(MiniWoB: ``reset(seed=s)`` plays task ``s % len(tasks)``) the seeds cover every task
equally; otherwise ``episodes`` seeds are played and grouped by task type. The result
is a YAML config fragment: ``env.kwargs.task`` holds the selected tasks, and the
measured success of every task is kept under ``selection``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import agentgym
from agentgym.config import Config
from agentgym.episode import Episode
from agentgym.errors import AgentGymError


def success_by_task(episodes: list[Episode]) -> dict[str, tuple[int, int]]:
    """task -> (episodes, wins), the task being the episode's task type (else its id)."""
    out: dict[str, list[int]] = {}
    for ep in episodes:
        n_w = out.setdefault(ep.task_type or ep.task_id, [0, 0])
        n_w[0] += 1
        n_w[1] += int(ep.won)
    return {k: (n, w) for k, (n, w) in sorted(out.items())}


def select(stats: dict[str, tuple[int, int]], min_success: float = 0.0,
           max_success: float = 1.0) -> list[str]:
    """Tasks whose success rate is > ``min_success`` and <= ``max_success``."""
    if not 0.0 <= min_success < max_success <= 1.0:
        raise AgentGymError(f"need 0 <= min-success < max-success <= 1, got "
                            f"{min_success} and {max_success}")
    return [t for t, (n, w) in stats.items() if min_success < w / n <= max_success]


def env_tasks(cfg: Config) -> list[str] | None:
    env = agentgym.make(cfg.env.id, **dict(cfg.env.kwargs))
    try:
        tasks = getattr(env.unwrapped, "tasks", None)
        return list(tasks) if tasks else None
    finally:
        env.close()


def measure(cfg: Config, episodes: int, console: Console | None = None) -> list[Episode]:
    from agentgym.trainer import build_policy, make_engine, seed_everything

    if episodes < 1:
        raise AgentGymError("--episodes must be at least 1")
    tasks = env_tasks(cfg)
    n_seeds = episodes * (len(tasks) if tasks else 1)
    cfg = copy.deepcopy(cfg)
    cfg.rollout.group_size = 1
    seed_everything(cfg.trainer.seed)
    policy = build_policy(cfg, seed=cfg.trainer.seed)
    engine = make_engine(cfg, policy, "train", run_id="select-tasks")
    try:
        return engine.run(list(range(n_seeds)), iteration=0, split="train")
    finally:
        engine.pool.close()
        policy.close()


def write_selection(path: str | Path, stats: dict[str, tuple[int, int]], selected: list[str],
                    min_success: float, max_success: float) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"env": {"kwargs": {"task": ",".join(selected)}},
           "selection": {"min_success": min_success, "max_success": max_success,
                         "success": {t: round(w / n, 4) for t, (n, w) in stats.items()},
                         "episodes": {t: n for t, (n, _) in stats.items()}}}
    header = ("# Written by `agentgym select-tasks`. Use the selected tasks with\n"
              f"#   agentgym train CONFIG env.kwargs.task={','.join(selected)}\n")
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return path


def run(cfg: Config, episodes: int, out: str | None = None, min_success: float = 0.0,
        max_success: float = 1.0, console: Console | None = None) -> list[str]:
    console = console or Console(highlight=False)
    played = measure(cfg, episodes, console)
    stats = success_by_task(played)
    selected = select(stats, min_success, max_success)
    table = Table(title=f"base policy success on {cfg.env.id}")
    for col in ("task", "episodes", "success", "selected"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for task, (n, w) in stats.items():
        table.add_row(task, str(n), f"{w / n:.1%}", "yes" if task in selected else "")
    console.print(table)
    target = write_selection(out or Path(cfg.logging.run_dir) / "selected_tasks.yaml",
                             stats, selected, min_success, max_success)
    console.print(f"{len(selected)} of {len(stats)} tasks selected; written to {escape(str(target))}",
                  soft_wrap=True)
    if not selected:
        console.print("[yellow]no task was solved: lower --min-success or use a stronger "
                      "base policy[/]")
    return selected
