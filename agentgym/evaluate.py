"""``agentgym eval``: success rate and reward over the eval split, by task type."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from agentgym import baselines
from agentgym.checkpoint import latest_checkpoint, load_weights
from agentgym.config import Config
from agentgym.episode import Episode
from agentgym.errors import AgentGymError
from agentgym.store import EpisodeStore
from agentgym.trainer import build_policy, episode_metrics, make_engine, seed_everything, success_by_type


def evaluate(cfg: Config, checkpoint: str | None = None, console: Console | None = None,
             store_path: str | Path | None = None, agent: str | None = None) -> dict[str, float]:
    """Play the eval split with the config's model (or, with ``agent``, a model-free
    baseline: "scripted" or "random"), print the table, return ``eval/...`` metrics."""
    console = console or Console(highlight=False)
    if cfg.eval.tasks <= 0:
        raise AgentGymError("eval.tasks is 0: set how many eval tasks to play, e.g. eval.tasks=20")
    seed_everything(cfg.trainer.seed)
    if agent is not None:
        episodes = baselines.play(cfg, agent, list(range(cfg.eval.tasks)))
    else:
        episodes = _play_model(cfg, checkpoint, console)
    if store_path is not None:
        with EpisodeStore(store_path) as store:
            store.add_episodes(episodes)
    who = agent or cfg.model.name
    table = Table(title=f"eval of {who} on {cfg.env.id} ({len(episodes)} episodes)")
    for col in ("task type", "episodes", "success", "mean reward"):
        table.add_column(col, justify="left" if col == "task type" else "right")
    rows = success_by_type(episodes)
    for kind, (n, wins, reward) in rows.items():
        table.add_row(kind, str(n), f"{wins / n:.1%}", f"{reward:.3f}")
    metrics = episode_metrics(episodes, "eval")
    if len(rows) > 1:
        table.add_row("all", str(len(episodes)), f"{metrics['eval/success_rate']:.1%}",
                      f"{metrics['eval/reward_mean']:.3f}", style="bold")
    console.print(table)
    return metrics


def _play_model(cfg: Config, checkpoint: str | None, console: Console) -> list[Episode]:
    policy = build_policy(cfg, seed=cfg.trainer.seed)
    if checkpoint is not None:
        path = Path(checkpoint)
        if not (path / "model").is_dir():  # a run directory: take its latest checkpoint
            path = latest_checkpoint(path) or path
        if not (path / "model").is_dir():
            raise AgentGymError(f"{checkpoint} is neither a checkpoint nor a run directory with one")
        load_weights(policy.model, path / "model")
        policy.sync_weights(policy.model, 0)  # vLLM generates from its own copy
        console.print(f"weights from {path}", soft_wrap=True)
    engine = make_engine(cfg, policy, "eval", run_id="eval")
    try:
        episodes = engine.run(list(range(cfg.eval.tasks)), iteration=0, split="eval",
                              on_turn=lambda turn, active: None)
    finally:
        engine.pool.close()
        policy.close()
    return episodes
