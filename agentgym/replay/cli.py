"""Arguments and entry points of ``agentgym replay`` and ``agentgym export``
(``agentgym/cli.py`` registers them)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape

from agentgym.errors import AgentGymError
from agentgym.replay.filters import add_filter_arguments, check_order, filters_from_args


def add_replay_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (holds episodes.db)")
    mode = p.add_argument_group("what to do (default: start the web viewer)")
    mode.add_argument("--list", action="store_true", help="list episodes in the terminal")
    mode.add_argument("--episode", metavar="ID",
                      help="show one episode in the terminal (or, with --verify, check it)")
    mode.add_argument("--verify", action="store_true",
                      help="re-play stored actions in a fresh environment and report differences")
    p.add_argument("--sample", type=int, default=10,
                   help="--verify: how many matching episodes to check (default 10)")
    p.add_argument("--seed", type=int, default=0, help="--verify: seed of the sample")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=50, help="--list: episodes per page")
    p.add_argument("--offset", type=int, default=0, help="--list: skip this many")
    p.add_argument("--order", default="-iteration,episode",
                   help="--list: e.g. -iteration,episode or -reward")
    p.add_argument("--host", default="127.0.0.1", help="viewer address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--no-tokenizer", action="store_true",
                   help="do not load the run's tokenizer (token ids instead of token text)")
    add_filter_arguments(p)


def run_replay(args: argparse.Namespace) -> int:
    from agentgym.replay.run import Run

    filters = filters_from_args(args)
    console = Console(highlight=False)
    if args.verify:
        return _verify(args, filters, console)
    if not (args.list or args.episode):
        from agentgym.replay.web import serve

        serve(args.run_dir, host=args.host, port=args.port,
              print_fn=lambda line: print(line, flush=True))
        return 0
    from agentgym.replay import terminal

    with Run(args.run_dir, tokenizer=not (args.no_tokenizer or args.json)) as run:
        run.store.quick_check()
        if args.list:
            if args.limit < 1 or args.offset < 0:
                raise AgentGymError("--limit must be at least 1 and --offset at least 0")
            terminal.list_episodes(run, filters, limit=args.limit, offset=args.offset,
                                   order=check_order(args.order), as_json=args.json, console=console)
        else:
            terminal.show_episode(run, args.episode, as_json=args.json, console=console)
    return 0


def _verify(args: argparse.Namespace, filters: dict, console: Console) -> int:
    from agentgym.replay.run import Run
    from agentgym.replay.verify import choose_episodes, verify_run

    if args.sample < 1:
        raise AgentGymError("--sample must be at least 1")

    def report(result) -> None:
        if args.json:
            return
        status = "[green]ok[/]" if result.ok else f"[red]{len(result.differences)} differ[/]"
        console.print(f"{escape(result.episode_id)}: {result.steps_checked} steps re-played, "
                      f"{status}" + (f" ({escape(result.note)})" if result.note else ""))
        for d in result.differences:
            where = "reset" if d.step < 0 else f"step {d.step}"
            console.print(f"  {where} {d.field}: stored {escape(_short(d.stored))} "
                          f"| re-played {escape(_short(d.replayed))}")

    with Run(args.run_dir, tokenizer=False) as run:
        ids = choose_episodes(run, filters, args.episode, args.sample, args.seed)
        if not ids:
            raise AgentGymError("no episode matches these filters")
        results = verify_run(run, ids, on_result=report)
    bad = sum(not r.ok for r in results)
    if args.json:
        sys.stdout.write(json.dumps([r.to_dict() for r in results], ensure_ascii=False) + "\n")
    else:
        colour = "red" if bad else "green"
        console.print(f"[{colour}]{len(results) - bad}/{len(results)} episodes re-played "
                      "identically[/]")
    return 1 if bad else 0


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (holds episodes.db)")
    p.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    p.add_argument("--out", "-o", help="output file (default RUN_NAME-episodes.FORMAT; "
                   "'-' writes JSON Lines to stdout)")
    p.add_argument("--no-tokens", action="store_true",
                   help="leave out token ids, logprobs and entropies")
    add_filter_arguments(p)


def run_export(args: argparse.Namespace) -> int:
    from agentgym.export import export

    target, count = export(args.run_dir, args.out, args.format, filters_from_args(args),
                           tokens=not args.no_tokens)
    if target != "-":
        Console(stderr=True, highlight=False).print(
            f"wrote {count} episodes to {escape(target)}")
    return 0


def _short(value: object, n: int = 120) -> str:
    text = repr(value) if not isinstance(value, str) else value
    text = text.replace("\n", "⏎")
    return text if len(text) <= n else text[: n - 1] + "…"
