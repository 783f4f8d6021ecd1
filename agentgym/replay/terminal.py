"""Terminal views of a run: ``agentgym replay RUN_DIR --list`` and ``--episode ID``."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agentgym.episode import Step
from agentgym.replay.run import Run, token_pieces
from agentgym.replay.views import anchor_groups, episode_dict, summary_dict
from agentgym.store import EpisodeSummary


def list_episodes(run: Run, filters: dict[str, Any], *, limit: int, offset: int, order: str,
                  as_json: bool, console: Console) -> None:
    rows = run.store.query(limit=limit, offset=offset, order=order, **filters)
    total = run.store.count(**filters)
    if as_json:
        console.file.write(json.dumps({"total": total, "offset": offset,
                                       "episodes": [summary_dict(s) for s in rows]},
                                      ensure_ascii=False) + "\n")
        return
    console.print(episode_table(rows, title=f"{run.name}: episodes {offset + 1}–"
                                f"{offset + len(rows)} of {total}"))


def episode_table(rows: list[EpisodeSummary], title: str) -> Table:
    table = Table(title=title)
    table.add_column("episode", overflow="fold", min_width=12)
    for name, width in (("iter", 4), ("split", 5), ("outcome", 7), ("reward", 6), ("len", 3),
                        ("termination", 9), ("task type", 9), ("error", 5)):
        table.add_column(name, justify="right" if name in ("iter", "reward", "len") else "left",
                         overflow="fold", min_width=width)
    for s in rows:
        table.add_row(s.episode_id, str(s.iteration), s.split,
                      Text("won", "green") if s.won else Text("lost", "red"),
                      _num(s.total_reward), str(s.length), s.termination, s.task_type or "",
                      Text((s.error or "")[:60], "red"))
    return table


def show_episode(run: Run, episode_id: str, *, as_json: bool, console: Console) -> None:
    ep = run.store.get_episode(episode_id)
    if as_json:
        data = episode_dict(ep)
        groups = anchor_groups(run.store, ep)
        for step in data["steps"]:
            step["anchor_group"] = [{"episode_id": g.episode_id, "step": g.index}
                                    for g in groups[step["index"]]]
        console.file.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    groups = anchor_groups(run.store, ep)
    meta = Table.grid(padding=(0, 2))
    for key, value in (("iteration", ep.iteration), ("split", ep.split), ("group", ep.group_id),
                       ("environment", ep.env_id), ("task", ep.task_id),
                       ("task type", ep.task_type), ("seed", ep.seed),
                       ("outcome", "won" if ep.won else "lost"),
                       ("reward", _num(ep.total_reward)), ("termination", ep.termination),
                       ("error", ep.error or "–")):
        meta.add_row(Text(key, "dim"), Text(str(value)))
    console.print(Panel(meta, title=f"episode {ep.episode_id}", expand=False))
    tokenizer = run.tokenizer
    for step in ep.steps:
        console.print(step_panel(step, token_pieces(tokenizer, step.response_ids),
                                 len(groups[step.index])))
    console.print(Panel(Text(ep.final_observation), title="final observation", expand=False))


def step_panel(step: Step, pieces: list[str], group_size: int) -> Panel:
    """One step in the order it happened: observation, output and action, result."""
    action = Text("action: ")
    action.append(step.action if step.action is not None else "(none parsed)", "bold")
    result = Text("result: ")
    result.append("valid " if step.action_valid else "invalid ",
                  "green" if step.action_valid else "red")
    result.append(f"reward {_num(step.reward)}  advantage {_num(step.advantage)}")
    if step.advantage_parts:
        result.append("  (" + ", ".join(f"{k} {_num(v)}" for k, v in
                                        sorted(step.advantage_parts.items())) + ")")
    parts: list[Any] = [Text("observation", "dim"), Text(step.observation),
                        Text("output (red = unlikely tokens)", "dim"),
                        logprob_text(pieces, step.logprobs), action, result]
    if step.error:
        parts.append(Text(step.error, "red"))
    parts.append(Text(f"anchor group {group_size}  anchor {step.anchor!r}", "dim"))
    return Panel(Group(*parts), title=f"step {step.index}", expand=True)


def logprob_text(pieces: list[str], logprobs: list[float]) -> Text:
    """The response with each token's background shaded by how unlikely it was."""
    text = Text()
    for piece, lp in zip(pieces, logprobs):
        level = min(1.0, max(0.0, 1.0 - math.exp(lp)))
        shade = int(40 + 180 * level)
        text.append(piece, style=f"on rgb({shade},{max(0, 60 - int(40 * level))},40)"
                    if level > 0.05 else "")
    return text


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
