"""Compare runs: success-rate curves of several run directories in one PNG, and a table.

    python tools/compare_runs.py runs/textworld_grpo runs/textworld_gigpo [--out compare.png]
        [--metric rollout/success_rate --metric eval/success_rate] [--smooth 3]

Reads each run's ``metrics.jsonl`` (agentgym.metrics.read_metrics); one panel per
metric, one curve per run. The table gives, per run and metric: the number of points,
the first and last value, the mean of the last ``--last`` points and the best value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agentgym.errors import AgentGymError
from agentgym.metrics import merge_iterations, read_metrics

DEFAULT_METRICS = ("rollout/success_rate", "eval/success_rate")


def load_curves(run_dirs: list[str], metrics: list[str]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """run name -> metric -> [(iteration, value)] for the iterations that logged it."""
    curves = {}
    names = _run_names(run_dirs)
    for run_dir, name in zip(run_dirs, names):
        records = merge_iterations(read_metrics(run_dir))
        if not records:
            raise AgentGymError(f"{run_dir} has no metrics yet ({run_dir}/metrics.jsonl is missing or empty)")
        curves[name] = {m: [(r["iteration"], float(r[m])) for r in records
                            if isinstance(r.get(m), (int, float))] for m in metrics}
    return curves


def _run_names(run_dirs: list[str]) -> list[str]:
    """Directory names, or full paths where two runs share a name."""
    names = [Path(d).name or str(d) for d in run_dirs]
    return [str(d) if names.count(n) > 1 else n for d, n in zip(run_dirs, names)]


def _smooth(values: list[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if window <= 1 or v.size < 2:
        return v
    cumsum = np.cumsum(np.insert(v, 0, 0.0))
    out = np.empty_like(v)
    for i in range(v.size):                     # trailing mean over the last `window` points
        lo = max(0, i + 1 - window)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out


def plot(curves, metrics: list[str], out: Path, smooth: int = 1) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * len(metrics), 3.6), layout="constrained")
    styles = ("-", "--", ":", "-.")        # runs with equal curves stay visible
    for n, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), n + 1)
        for r, (name, by_metric) in enumerate(curves.items()):
            points = by_metric[metric]
            if not points:
                continue
            its, values = zip(*points)
            ax.plot(its, _smooth(list(values), smooth), linestyle=styles[r % len(styles)],
                    marker="osv^D"[r % 5] if len(points) < 30 else None, markersize=4, label=name)
        ax.set_title(metric + (f" (mean of last {smooth})" if smooth > 1 else ""), fontsize=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def table(curves, metrics: list[str], last: int) -> Table:
    t = Table(title="runs")
    for col in ("run", "metric", "points", "first", "last", f"mean last {last}", "best"):
        t.add_column(col, justify="left" if col in ("run", "metric") else "right")
    for name, by_metric in curves.items():
        for metric in metrics:
            values = [v for _, v in by_metric[metric]]
            if not values:
                t.add_row(name, metric, "0", "-", "-", "-", "-")
                continue
            t.add_row(name, metric, str(len(values)), f"{values[0]:.3f}", f"{values[-1]:.3f}",
                      f"{np.mean(values[-last:]):.3f}", f"{max(values):.3f}")
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories (each with metrics.jsonl)")
    ap.add_argument("--metric", action="append",
                    help=f"metric to compare (default: {', '.join(DEFAULT_METRICS)})")
    ap.add_argument("--out", default="compare_runs.png", help="PNG to write")
    ap.add_argument("--smooth", type=int, default=1, help="trailing mean over this many points")
    ap.add_argument("--last", type=int, default=3, help="table: mean over this many last points")
    args = ap.parse_args(argv)
    console = Console(highlight=False)
    metrics = args.metric or list(DEFAULT_METRICS)
    try:
        curves = load_curves(args.runs, metrics)
    except AgentGymError as e:
        console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
        return 2
    path = plot(curves, metrics, Path(args.out), smooth=args.smooth)
    console.print(table(curves, metrics, args.last))
    console.print(f"curves: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
