"""``agentgym eval``: success, invalid-action and parse-failure rates and reward over the
eval split, by task type."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentgym import baselines
from agentgym.checkpoint import latest_checkpoint, load_weights
from agentgym.config import Config
from agentgym.episode import Episode
from agentgym.errors import AgentGymError
from agentgym.preflight import preflight
from agentgym.store import EpisodeStore
from agentgym.trainer import build_policy, episode_metrics, make_engine, seed_everything


def evaluate(cfg: Config, checkpoint: str | None = None, console: Console | None = None,
             store_path: str | Path | None = None, agent: str | None = None) -> dict[str, float]:
    """Play the eval split with the config's model (or, with ``agent``, a model-free
    baseline: "scripted" or "random"), print the table, return ``eval/...`` metrics."""
    console = console or Console(highlight=False)
    if cfg.eval.tasks <= 0:
        raise AgentGymError("eval.tasks is 0: set how many eval tasks to play, e.g. eval.tasks=20")
    preflight(cfg, "eval" if agent is None else "baseline")
    seed_everything(cfg.trainer.seed)
    if agent is not None:
        episodes = baselines.play(cfg, agent, list(range(cfg.eval.tasks)))
    else:
        episodes = _play_model(cfg, checkpoint, console)
    if store_path is not None:
        with EpisodeStore(store_path) as store:
            store.add_episodes(episodes)
    who = agent or cfg.model.name
    console.print(results_table(episodes, f"eval of {who} on {cfg.env.id} ({len(episodes)} episodes)"))
    return episode_metrics(episodes, "eval")


def results_table(episodes: list[Episode], title: str) -> Table:
    """Success, invalid-action and parse-failure rates (of steps) and mean reward, by task type."""
    table = Table(title=escape(title))
    for col in ("task type", "episodes", "success", "invalid actions", "parse failures",
                "mean reward"):
        table.add_column(col, justify="left" if col == "task type" else "right")
    by_type: dict[str, list[Episode]] = {}
    for ep in episodes:
        by_type.setdefault(ep.task_type or "all", []).append(ep)
    rows = [(kind, by_type[kind], None) for kind in sorted(by_type)]
    if len(rows) > 1:
        rows.append(("all", episodes, "bold"))
    for kind, group, style in rows:
        m = episode_metrics(group, "eval")
        table.add_row(escape(kind), str(len(group)), f"{m['eval/success_rate']:.1%}",
                      f"{m['eval/invalid_action_rate']:.1%}", f"{m['eval/parse_failure_rate']:.1%}",
                      f"{m['eval/reward_mean']:.3f}", style=style)
    return table


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
        console.print(f"weights from {escape(str(path))}", soft_wrap=True)
    engine = make_engine(cfg, policy, "eval", run_id="eval")
    try:
        episodes = engine.run(list(range(cfg.eval.tasks)), iteration=0, split="eval",
                              on_turn=lambda turn, active: None)
    finally:
        engine.pool.close()
        policy.close()
    return episodes
