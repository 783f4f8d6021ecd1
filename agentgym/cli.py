"""The ``agentgym`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import warnings

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


def cmd_train(args) -> int:
    from agentgym.trainer import train

    overrides = list(args.overrides)
    config = args.config
    if config is not None and "=" in config:  # `agentgym train --resume DIR key=value`
        overrides.insert(0, config)
        config = None
    if (config is None) == (args.resume is None):
        raise AgentGymError("give a config file, or --resume RUN_DIR (not both)")
    train(config, overrides, resume_dir=args.resume)
    return 0


def cmd_validate(args) -> int:
    from agentgym.config import load_config, to_yaml

    cfg = load_config(args.config, args.overrides)
    if args.print:
        print(to_yaml(cfg))
    Console().print(f"[green]{escape(args.config)} is valid[/]")
    return 0


def cmd_eval(args) -> int:
    from agentgym.config import load_config
    from agentgym.evaluate import evaluate

    overrides = list(args.overrides)
    if args.policy in ("scripted", "random"):
        if args.checkpoint or args.base_url:
            raise AgentGymError(f"--policy {args.policy} plays without a model; "
                                "drop --checkpoint / --base-url")
        evaluate(load_config(args.config, overrides), store_path=args.store, agent=args.policy)
        return 0
    if args.policy == "openai":
        if not args.base_url:
            raise AgentGymError("--policy openai needs --base-url, e.g. http://127.0.0.1:8000/v1")
        overrides += ["rollout.backend=openai", f"rollout.base_url={args.base_url}"]
        if args.checkpoint:
            raise AgentGymError("--checkpoint loads local weights; it does not apply to --policy openai")
    cfg = load_config(args.config, overrides)
    evaluate(cfg, checkpoint=args.checkpoint, store_path=args.store)
    return 0


def cmd_select_tasks(args) -> int:
    from agentgym.config import load_config
    from agentgym.select_tasks import run

    run(load_config(args.config, args.overrides), args.episodes, out=args.out,
        min_success=args.min_success, max_success=args.max_success)
    return 0


def cmd_alfworld_suite(args) -> int:
    from agentgym.envs.alfworld.suite import cli

    return cli(split=args.split, size=args.size, cache_dir=args.cache_dir)


def cmd_serve(args) -> int:
    from agentgym.policy.server import serve

    serve(args.model, host=args.host, port=args.port)
    return 0


def cmd_webshop_serve(args) -> int:
    from agentgym.envs.webshop.server import serve

    serve(host=args.host, port=args.port, **parse_pairs(args.kwargs))
    return 0


def cmd_replay(args) -> int:
    from agentgym.replay.cli import run_replay

    return run_replay(args)


def cmd_export(args) -> int:
    from agentgym.replay.cli import run_export

    return run_export(args)


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

    p = sub.add_parser("train", help="train from a YAML config (or resume a run)")
    p.add_argument("config", nargs="?", help="YAML recipe, e.g. configs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("validate", help="check a config without running it")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--print", action="store_true", help="print the full resolved config")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("eval", help="success rate over the eval split")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--checkpoint", help="a checkpoint directory, or a run directory (latest)")
    p.add_argument("--policy", choices=["hf", "openai", "scripted", "random"], default="hf",
                   help="hf: the config's model; openai: a server; scripted: the environment's "
                        "walkthrough; random: random admissible actions (baselines)")
    p.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--store", help="also write the episodes to this episodes.db")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("select-tasks", help="keep the tasks the base policy solves sometimes")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--episodes", type=int, default=8, help="episodes per task")
    p.add_argument("--out", help="YAML to write (default: RUN_DIR/selected_tasks.yaml)")
    p.add_argument("--min-success", type=float, default=0.0, help="keep success > this")
    p.add_argument("--max-success", type=float, default=1.0, help="keep success <= this")
    p.set_defaults(func=cmd_select_tasks)

    p = sub.add_parser("alfworld-suite", help="generate an ALFWorld task suite, print its composition")
    p.add_argument("--split", default="train", help="train, eval_seen or eval_unseen")
    p.add_argument("--size", type=int, default=None, help="games (default: the official size)")
    p.add_argument("--cache-dir", default=None, help="default: $AGENTGYM_CACHE/alfworld")
    p.set_defaults(func=cmd_alfworld_suite)

    p = sub.add_parser("serve", help="OpenAI-compatible chat server over a local model")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("webshop-serve", help="the WebShop environment as a website")
    p.add_argument("kwargs", nargs="*", metavar="key=value", help="WebShop-v0 options")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_webshop_serve)

    from agentgym.replay.cli import add_export_arguments, add_replay_arguments

    p = sub.add_parser("replay", help="inspect a run's episodes (web viewer, terminal, --verify)")
    add_replay_arguments(p)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("export", help="write a run's episodes as JSON Lines or Parquet")
    add_export_arguments(p)
    p.set_defaults(func=cmd_export)
    return parser


def _quiet_known_warnings() -> None:
    """Warnings from dependencies that say nothing a user can act on."""
    warnings.filterwarnings("ignore", message=".*is not fully supported.*")  # jericho on TextWorld games
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def main(argv: list[str] | None = None) -> int:
    _quiet_known_warnings()
    args = build_parser().parse_args(argv)
    try:
        try:
            return args.func(args)
        except (OSError, sqlite3.Error) as e:  # a full disk, a read-only dir: say what to do
            from agentgym.rundir import filesystem_error

            raise filesystem_error(e, "files") or e
    except AgentGymError as e:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(e))}", highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
