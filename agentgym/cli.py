"""The ``agentgym`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sys

import yaml
from rich.console import Console
from rich.markup import escape

from agentgym.errors import AgentGymError


def parse_pairs(pairs: list[str]) -> dict:
    """``["family=cooking", "num_games=5"]`` -> ``{"family": "cooking", "num_games": 5}``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AgentGymError(f"expected key=value, got {pair!r}")
        out[key] = yaml.safe_load(value) if value else ""
    return out


def cmd_envs(args) -> int:
    from rich.table import Table

    import agentgym

    table = Table(title="registered environments")
    table.add_column("id")
    table.add_column("steps", justify="right")
    table.add_column("description")
    for info in agentgym.registered_envs():
        table.add_row(info.id, str(info.max_episode_steps or "-"), info.description)
    Console().print(table)
    return 0


def cmd_check(args) -> int:
    import agentgym
    from agentgym.checker import check_env

    env = agentgym.make(args.env_id, **parse_pairs(args.kwargs))
    report = check_env(env, env_id=args.env_id, episodes=args.episodes, seed=args.seed,
                       agent=args.agent)
    report.render()
    return 0 if report.ok else 1


def cmd_play(args) -> int:
    from agentgym.play import play

    play(args.env_id, seed=args.seed, env_kwargs=parse_pairs(args.kwargs))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentgym", description="Multi-turn RL for LLM agents on text environments.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("envs", help="list the registered environments")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("check", help="check that an environment keeps the contract")
    p.add_argument("env_id")
    p.add_argument("kwargs", nargs="*", metavar="key=value", help="environment options")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agent", choices=["random", "scripted"], default="random",
                   help="random admissible actions, or the environment's walkthrough")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("play", help="play an environment in the terminal")
    p.add_argument("env_id")
    p.add_argument("kwargs", nargs="*", metavar="key=value", help="environment options")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_play)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AgentGymError as e:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(e))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
