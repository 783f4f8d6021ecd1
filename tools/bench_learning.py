"""Learning benchmark: train a recipe over several seeds; before/after eval success with
a 95 % interval, a collapse check per seed, one PNG and a JSON summary.

    python tools/bench_learning.py RECIPE.yaml [--seeds 3] [--compare RECIPE_B.yaml]
        [--out DIR] [key=value ...]

Seed s trains with ``trainer.seed=s`` (and the key=value overrides, applied to every
recipe) in ``DIR/<recipe stem>/seed<s>`` by ``agentgym train`` in a subprocess (its output
goes to ``train.log`` there). Before/after success is read from the run's metrics.jsonl:
the trainer's greedy eval at iteration 0 and at the last iteration. A seed is flagged
"collapse" when success did not rise while the eval invalid-action rate fell, or when the
mean token entropy (``actor/entropy``) of the last iteration fell below 25 % of the
first's. Writes ``DIR/bench_learning.png`` (rollout success per seed, thin, and the mean,
thick, with the eval points, against iteration, wall-clock and generated tokens) and
``DIR/summary.json``. Last line: ``bench_learning: before=<x> after=<y> seeds=<n>``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from agentgym.checkpoint import latest_checkpoint
from agentgym.config import load_config
from agentgym.errors import AgentGymError
from agentgym.metrics import merge_iterations, read_metrics

DEFAULT_OUT = Path("runs/bench_learning")
SET_BY_BENCH = ("trainer.seed", "logging.run_dir")
ENTROPY_FLOOR = 0.25            # collapse: last iteration's entropy below this share of the first's
PLOT_NAME = "bench_learning.png"
SUMMARY_NAME = "summary.json"
X_AXES = (("iteration", "iteration"), ("elapsed_s", "wall-clock s"), ("tokens_total", "generated tokens"))


# ---- statistics ----

def t_quantile(p: float, dof: int) -> float:
    """The p-quantile (p > 0.5) of Student's t with ``dof`` degrees of freedom, by bisection
    on its CDF (the density integrated with Simpson's rule)."""
    def cdf(x: float) -> float:
        grid = np.linspace(0.0, x, 2001)
        dens = np.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)
                      - 0.5 * math.log(dof * math.pi)
                      - (dof + 1) / 2 * np.log1p(grid ** 2 / dof))
        h = x / 2000
        return 0.5 + h / 3 * (dens[0] + dens[-1] + 4 * dens[1:-1:2].sum() + 2 * dens[2:-1:2].sum())

    low, high = 0.0, 1000.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


def mean_interval(values: list[float]) -> tuple[float, float | None]:
    """Mean and the half-width of its 95 % t-interval (n-1 dof); None for one value."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, None
    return mean, t_quantile(0.975, n - 1) * float(np.std(values, ddof=1)) / math.sqrt(n)


# ---- one seed's run ----

def read_seed(run_dir: Path) -> dict:
    """Before/after eval, entropy, invalid rates and the rollout curve of a finished run."""
    records = merge_iterations(read_metrics(run_dir))
    evals = [r for r in records if isinstance(r.get("eval/success_rate"), (int, float))]
    if not evals or evals[0]["iteration"] != 0 or len(evals) < 2:
        raise AgentGymError(f"{run_dir}: metrics.jsonl has no eval before and after training "
                            "(does the recipe set eval.tasks?)")
    first, last = evals[0], evals[-1]
    trained = [r for r in records if r["iteration"] > 0]
    entropy = [r["actor/entropy"] for r in trained if "actor/entropy" in r]
    return {
        "before": first["eval/success_rate"], "after": last["eval/success_rate"],
        "delta": last["eval/success_rate"] - first["eval/success_rate"],
        "invalid_before": first.get("eval/invalid_action_rate"),
        "invalid_after": last.get("eval/invalid_action_rate"),
        "entropy_first": entropy[0] if entropy else None,
        "entropy_last": entropy[-1] if entropy else None,
        "final_iteration": last["iteration"],
        "final_elapsed_s": last.get("time/elapsed_s"),
        "final_tokens_total": last.get("rollout/tokens_total"),
        "curve": [{"iteration": r["iteration"], "success": r["rollout/success_rate"],
                   "elapsed_s": r.get("time/elapsed_s"), "tokens_total": r.get("rollout/tokens_total")}
                  for r in trained if "rollout/success_rate" in r],
    }


def collapse_reasons(seed: dict) -> list[str]:
    """Why a seed looks collapsed ([] when it does not)."""
    reasons = []
    before, after = seed["invalid_before"], seed["invalid_after"]
    if seed["after"] <= seed["before"] and before is not None and after is not None and after < before:
        reasons.append("success did not rise while invalid actions fell")
    first, last = seed["entropy_first"], seed["entropy_last"]
    if first is not None and last is not None and last < ENTROPY_FLOOR * first:
        reasons.append(f"entropy fell below {ENTROPY_FLOOR:.0%} of the first iteration's")
    return reasons


# ---- training ----

def seed_command(recipe: Path, seed: int, run_dir: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "agentgym.cli", "train", str(recipe), *overrides,
            f"trainer.seed={seed}", f"logging.run_dir={run_dir}"]


def check_recipe(recipe: Path, run_dirs: list[Path], overrides: list[str]) -> None:
    """Fail before any training: a bad key, no eval, or a run directory already used."""
    for key in SET_BY_BENCH:
        if any(o.split("=", 1)[0] == key for o in overrides):
            raise AgentGymError(f"{key} is set by the bench, one per seed; leave it out")
    for seed, run_dir in enumerate(run_dirs):
        cfg = load_config(recipe, [*overrides, f"trainer.seed={seed}", f"logging.run_dir={run_dir}"])
        if not cfg.eval.tasks:
            raise AgentGymError(f"{recipe}: eval.tasks is 0, so there is no before/after eval; "
                                "set eval.tasks=N")
        if latest_checkpoint(run_dir) is not None:
            raise AgentGymError(f"{run_dir} already holds a run: remove it or pass another --out")


def train_seed(command: list[str], log_path: Path) -> float:
    """Run one training command, its output into ``log_path``; the wall-clock seconds."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise AgentGymError(f"training failed (exit {done.returncode}), {log_path}:\n" + "\n".join(tail))
    return time.perf_counter() - t0


def bench_recipe(recipe: Path, seeds: int, out: Path, overrides: list[str]) -> dict:
    """Train every seed of one recipe and read its results."""
    run_dirs = [out / recipe.stem / f"seed{s}" for s in range(seeds)]
    check_recipe(recipe, run_dirs, overrides)
    results = []
    for seed, run_dir in enumerate(run_dirs):
        command = seed_command(recipe, seed, run_dir, overrides)
        print(f"{recipe.stem} seed {seed}: training in {run_dir} (log: train.log)", flush=True)
        results.append(seed_result(seed, run_dir, command, train_seed(command, run_dir / "train.log")))
    return summarize(recipe, overrides, results)


def seed_result(seed: int, run_dir: Path, command: list[str], wall_s: float) -> dict:
    """One seed's numbers, read from its run directory, with its collapse flag."""
    result = {"seed": seed, "run_dir": str(run_dir), "command": command, "wall_s": wall_s,
              **read_seed(run_dir)}
    result["collapse_reasons"] = collapse_reasons(result)
    result["collapse"] = bool(result["collapse_reasons"])
    return result


def summarize(recipe: Path, overrides: list[str], results: list[dict]) -> dict:
    """The recipe's per-seed results, means and 95 % half-widths."""
    stats = {key: mean_interval([r[key] for r in results]) for key in ("before", "after", "delta")}
    return {"recipe": str(recipe), "name": recipe.stem, "overrides": overrides, "seeds": results,
            "mean": {k: m for k, (m, _) in stats.items()},
            "interval95": {k: h for k, (_, h) in stats.items()}}


# ---- report ----

def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def seed_line(r: dict) -> str:
    return (f"seed {r['seed']}: before {r['before']:.3f} after {r['after']:.3f} "
            f"delta {r['delta']:+.3f} | {r['wall_s']:.0f} s | eval invalid {_fmt(r['invalid_after'])} "
            f"| entropy {_fmt(r['entropy_last'])} | collapse: "
            + (f"yes ({'; '.join(r['collapse_reasons'])})" if r["collapse"] else "no"))


def stats_lines(bench: dict) -> list[str]:
    n = len(bench["seeds"])
    lines = []
    for key in ("before", "after", "delta"):
        mean, half = bench["mean"][key], bench["interval95"][key]
        spread = (f"± {half:.3f} (95 % t-interval, n={n})" if half is not None
                  else "(95 % interval undefined for one seed)")
        lines.append(f"{key:>6} {mean:+.3f} {spread}" if key == "delta" else f"{key:>6} {mean:.3f} {spread}")
    return lines


def result_line(bench: dict, label: str = "bench_learning") -> str:
    m = bench["mean"]
    return f"{label}: before={m['before']:.3f} after={m['after']:.3f} seeds={len(bench['seeds'])}"


def report_lines(benches: list[dict]) -> list[str]:
    """Everything printed after training: per-seed lines and statistics per recipe, then
    (with several recipes) one result line each, and the first recipe's last."""
    lines = []
    for bench in benches:
        lines.append(f"== {bench['name']} ({len(bench['seeds'])} seeds) ==")
        lines += [seed_line(r) for r in bench["seeds"]]
        lines += stats_lines(bench)
    if len(benches) > 1:
        lines += [result_line(b, f"bench_learning {b['name']}") for b in benches]
    return lines + [result_line(benches[0])]


# ---- plot ----

def _mean_curve(seeds: list[dict], x: str) -> tuple[list[float], list[float]]:
    """The mean over seeds, per iteration, of x and of rollout success."""
    by_iteration: dict[int, list[dict]] = {}
    for seed in seeds:
        for point in seed["curve"]:
            if point[x] is not None:
                by_iteration.setdefault(point["iteration"], []).append(point)
    its = sorted(by_iteration)
    return ([float(np.mean([p[x] for p in by_iteration[i]])) for i in its],
            [float(np.mean([p["success"] for p in by_iteration[i]])) for i in its])


def _eval_points(seed: dict, x: str) -> list[tuple[float, float]]:
    """(x, eval success) before and after training; None where x was not logged."""
    final = {"iteration": seed["final_iteration"], "elapsed_s": seed["final_elapsed_s"],
             "tokens_total": seed["final_tokens_total"]}[x]
    return [(0.0, seed["before"]), (final, seed["after"])] if final is not None else []


def plot(benches: list[dict], path: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: no global backend (Agg when saving)
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(15, 4.0), layout="constrained")
    for n, (x, label) in enumerate(X_AXES):
        ax = fig.add_subplot(1, len(X_AXES), n + 1)
        for b, bench in enumerate(benches):
            colour = f"C{b}"
            for seed in bench["seeds"]:
                points = [(p[x], p["success"]) for p in seed["curve"] if p[x] is not None]
                if points:
                    ax.plot(*zip(*points), color=colour, linewidth=0.8, alpha=0.5)
                evals = _eval_points(seed, x)
                if evals:
                    ax.scatter(*zip(*evals), color=colour, marker="D", s=14, alpha=0.6)
            xs, ys = _mean_curve(bench["seeds"], x)
            if xs:
                ax.plot(xs, ys, color=colour, linewidth=2.5, label=f"{bench['name']} rollout (mean)")
        ax.set_title(f"success rate vs {label} (diamonds: eval)", fontsize=10)
        ax.set_xlabel(label)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        if x == "iteration":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# ---- command line ----

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipe", type=Path)
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help="config overrides, applied to every recipe")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--compare", type=Path, help="a second recipe, benchmarked the same way")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_intermixed_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    if args.compare is not None and args.compare.stem == args.recipe.stem:
        ap.error("the two recipes share a file name; their run directories would collide")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    recipes = [args.recipe] + ([args.compare] if args.compare else [])
    try:
        benches = [bench_recipe(r, args.seeds, args.out, args.overrides) for r in recipes]
    except AgentGymError as e:
        print(f"bench_learning: {e}", file=sys.stderr)
        return 2
    png = plot(benches, args.out / PLOT_NAME)
    summary = {"benches": benches, "plot": str(png), "argv": sys.argv if argv is None else argv}
    (args.out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"plot {png}, summary {args.out / SUMMARY_NAME}")
    print("\n".join(report_lines(benches)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
