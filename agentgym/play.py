"""``agentgym play``: a person plays an environment in the terminal.

Reads one action per line from standard input, so it can be scripted too:
``printf 'open door\\ngo east\\n' | agentgym play agentgym/TextWorld-v0 --seed 3``.
A number picks that admissible action; ``:quit`` stops; end of input stops.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.markup import escape

import agentgym


def play(env_id: str, seed: int = 0, env_kwargs: dict | None = None,
         stdin: TextIO | None = None, console: Console | None = None) -> dict:
    """Play one episode; returns {won, reward, steps}."""
    stdin = stdin or sys.stdin
    console = console or Console(highlight=False)
    env = agentgym.make(env_id, **(env_kwargs or {}))
    try:
        obs, info = env.reset(seed=seed)
        total, steps, won = 0.0, 0, False
        console.print(f"[bold]{escape(env_id)}[/] seed {seed} · task {escape(info['task_id'])}")
        while True:
            console.print(escape(obs.strip()))
            actions = info.get("admissible_actions") or []
            if actions:
                listing = "  ".join(f"[dim]{i}[/] {escape(a)}" for i, a in enumerate(actions, 1))
                console.print(f"[cyan]actions:[/] {listing}")
            console.print("> ", end="")
            line = stdin.readline()
            if not line or line.strip() == ":quit":
                console.print("\nstopped")
                break
            action = line.rstrip("\n")
            if action.strip().isdigit() and 1 <= int(action) <= len(actions):
                action = actions[int(action) - 1]
            console.print(escape(action), style="dim")
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            steps += 1
            if not info["action_valid"]:
                reason = info.get("invalid_reason", "not an admissible action")
                console.print(f"[yellow](invalid: {escape(reason)})[/]")
            if terminated or truncated:
                won = bool(info["won"])
                console.print(escape(obs.strip()))
                outcome = "You won!" if won else ("Time is up." if truncated else "Game over.")
                console.print(f"[bold]{outcome}[/] reward {total:g} in {steps} steps")
                break
        return {"won": won, "reward": total, "steps": steps}
    finally:
        env.close()
