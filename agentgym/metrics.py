"""Training metrics: one JSON line per iteration, learning-curve plots, optional TB/W&B.

``RUN_DIR/metrics.jsonl`` is the record: ``{"iteration": i, "time": unix_s, **metrics}``
per line, flushed as it is written, keys namespaced (``rollout/success_rate``,
``loss/policy``, ``perf/tokens_per_s``). TensorBoard and Weights & Biases are mirrors,
imported only when asked for.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "learning_curves.png"
# Panels of the learning-curve PNG: (title, keys drawn in it). Train and eval values of
# the same quantity share a panel.
PANELS = (
    ("success rate", ("rollout/success_rate", "eval/success_rate")),
    ("invalid-action rate", ("rollout/invalid_action_rate", "eval/invalid_action_rate")),
    ("parse-failure rate", ("rollout/parse_failure_rate", "eval/parse_failure_rate")),
    ("reward", ("rollout/reward_mean", "eval/reward_mean")),
    ("episode length", ("rollout/episode_length",)),
    ("loss/policy", ("loss/policy",)),
    ("loss/kl", ("loss/kl",)),
    ("actor/entropy", ("actor/entropy",)),
    ("actor/grad_norm", ("actor/grad_norm",)),
    ("perf/tokens_per_s", ("perf/tokens_per_s",)),
)
MAX_PLOTS = 9
# Cost axes: rollout success is also drawn against each of these where it was logged.
COST_AXES = (("time/elapsed_s", "wall-clock s"), ("rollout/tokens_total", "generated tokens"))


def _kl_off(config: dict) -> bool:
    loss = ((config.get("algorithm") or {}).get("loss") or {})
    return not loss.get("kl_coef")


# Panels that are constant by construction under a config (not drawn then).
CONSTANT_WHEN = {"loss/kl": _kl_off}

# The summary line's fields, in order: (metric key, format of its part).
SUMMARY_FIELDS = (
    ("rollout/success_rate", "success {:.2f}"),
    ("rollout/reward_mean", "reward {:.2f}"),
    ("rollout/episode_length", "len {:.1f}"),
    ("rollout/invalid_action_rate", "invalid {:.2f}"),
    ("rollout/parse_failure_rate", "unparsed {:.2f}"),
    ("eval/success_rate", "eval {:.2f}"),
    ("loss/policy", "loss {:.3f}"),
    ("loss/kl", "kl {:.3f}"),
    ("actor/entropy", "ent {:.2f}"),
    ("perf/tokens_per_s", "{:.0f} tok/s"),
    ("perf/iteration_s", "{:.0f} s"),
)


class MetricsLogger:
    """Append metrics to ``RUN_DIR/metrics.jsonl``; mirror to TensorBoard/W&B if asked.

    ``config`` (a dict or a dataclass, e.g. the run's config) is recorded by W&B.
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = False, wandb: bool = False,
                 wandb_project: str | None = None, config: Any = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._tb = _tensorboard_writer(self.run_dir / "tensorboard") if tensorboard else None
        self._wandb = _wandb_run(self.run_dir, wandb_project, config) if wandb else None
        self._file = self.path.open("a", encoding="utf-8")
        if self._file.tell() and not _ends_with_newline(self.path):
            self._file.write("\n")  # a crash cut the last line: keep it off the next one

    def log(self, iteration: int, metrics: dict[str, Any]) -> None:
        """Record one iteration's metrics (numbers; numpy/torch scalars are converted)."""
        values = {key: _plain(value) for key, value in metrics.items()}
        record = {"iteration": iteration, "time": time.time(), **values}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        numbers = {k: v for k, v in values.items() if isinstance(v, (int, float))}
        if self._tb is not None:
            for key, value in numbers.items():
                self._tb.add_scalar(key, value, iteration)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(numbers, step=iteration)

    def plot(self) -> Path | None:
        """Write ``RUN_DIR/learning_curves.png``; None when nothing has been logged."""
        return plot_metrics(self.run_dir)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of ``RUN_DIR/metrics.jsonl`` in file order ([] if none yet).

    A line that does not parse is one a crash cut short; it is skipped.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AgentGymError(f"no run directory {run_dir}")
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "iteration" in record:
                records.append(record)
    return records


def merge_iterations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per iteration, ascending: records of the same iteration (eval metrics
    logged separately, iterations a resumed run repeated) merged, later values winning."""
    merged: dict[int, dict[str, Any]] = {}
    for record in records:
        merged.setdefault(record["iteration"], {}).update(record)
    return [merged[i] for i in sorted(merged)]


def plot_metrics(run_dir: str | Path) -> Path | None:
    """Plot the main curves of a run into ``RUN_DIR/learning_curves.png``.

    One panel per entry of ``PANELS`` that was logged (train and eval in the same
    panel), skipping panels constant by construction under the run's config (KL at
    ``kl_coef: 0``); a run without any of them gets its first ``MAX_PLOTS`` numeric
    keys. One point per iteration (see :func:`merge_iterations`), integer iteration
    ticks, plain tick labels, rates on a fixed 0-1 axis. The figure is titled with the
    run directory, environment and model.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, thread-safe
    from matplotlib.ticker import MaxNLocator

    run_dir = Path(run_dir)
    records = merge_iterations(read_metrics(run_dir))
    config = _run_config(run_dir)
    numeric = [k for k in dict.fromkeys(k for r in records for k in r)
               if k not in ("iteration", "time")
               and any(isinstance(r.get(k), (int, float)) for r in records)]
    panels = choose_panels(numeric, config)
    if not panels:
        return None
    costs = [(key, label) for key, label in COST_AXES
             if key in numeric and "rollout/success_rate" in numeric]
    cols = min(3, len(panels) + len(costs))
    rows = math.ceil((len(panels) + len(costs)) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows + 0.4), layout="constrained")
    fig.suptitle(_run_title(run_dir, config), fontsize=11)
    for n, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, n + 1)
        for key in keys:
            points = [(r["iteration"], r[key]) for r in records
                      if isinstance(r.get(key), (int, float))]
            ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3,
                    label=key.split("/")[0])
        if len(keys) > 1:
            ax.legend(fontsize=8)
        if title.endswith("rate"):
            ax.set_ylim(-0.05, 1.05)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.grid(alpha=0.3)
    for n, (key, label) in enumerate(costs):
        ax = fig.add_subplot(rows, cols, len(panels) + n + 1)
        _plot_against(ax, records, key, "rollout/success_rate")
        ax.set_title(f"success rate vs {label}", fontsize=10)
        ax.set_xlabel(label)
    path = run_dir / PLOT_FILE
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)  # readers never see a half-written image
    return path


def _plot_against(ax, records: list[dict[str, Any]], x_key: str, y_key: str) -> None:
    points = [(r[x_key], r[y_key]) for r in records
              if isinstance(r.get(x_key), (int, float)) and isinstance(r.get(y_key), (int, float))]
    if points:
        ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)


def choose_panels(logged: list[str], config: dict) -> list[tuple[str, list[str]]]:
    """(title, keys) of each panel to draw, given the logged numeric keys."""
    panels = [(title, [k for k in keys if k in logged]) for title, keys in PANELS
              if not (title in CONSTANT_WHEN and config and CONSTANT_WHEN[title](config))]
    return [(title, keys) for title, keys in panels if keys] \
        or [(key, [key]) for key in logged[:MAX_PLOTS]]


def _run_config(run_dir: Path) -> dict:
    import yaml

    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def _run_title(run_dir: Path, config: dict) -> str:
    parts = [run_dir.name]
    env = (config.get("env") or {}).get("id")
    model = (config.get("model") or {}).get("name")
    algo = (((config.get("algorithm") or {}).get("advantage")) or {})
    if env:
        parts.append(str(env))
    if model:
        parts.append(str(model))
    if algo.get("episode"):
        step = algo.get("step")
        parts.append(str(algo["episode"]) + (f" + {step}" if step and step != "none" else ""))
    return " · ".join(parts)


# What changed: (metric suffix, label, format).
RATE_FIELDS = (("success_rate", "success", "{:.2f}"),
               ("invalid_action_rate", "invalid actions", "{:.2f}"),
               ("parse_failure_rate", "parse failures", "{:.2f}"))


def eval_line(label: str, metrics: dict[str, Any], prefix: str = "eval") -> str:
    """``eval before training: success 0.12 | invalid actions 0.62 | parse failures 0.42``."""
    parts = [f"{name} {fmt.format(metrics[f'{prefix}/{key}'])}"
             for key, name, fmt in RATE_FIELDS if f"{prefix}/{key}" in metrics]
    return f"{label}: " + " | ".join(parts)


def comparison_line(before: dict[str, Any], after: dict[str, Any], prefix: str = "eval") -> str:
    """``eval before -> after: success 0.12 -> 0.25 | invalid actions 0.62 -> 0.21 | ...``."""
    parts = []
    for key, name, fmt in RATE_FIELDS:
        k = f"{prefix}/{key}"
        if k in before and k in after:
            parts.append(f"{name} {fmt.format(before[k])} → {fmt.format(after[k])}")
    return f"{prefix} before → after training: " + " | ".join(parts)


def summary_line(iteration: int, metrics: dict[str, Any], total: int | None = None) -> str:
    """The one-line summary the trainer prints after each iteration, e.g.
    ``iter 3/10 | success 0.25 | reward 0.31 | len 7.2 | loss -0.012 | kl 0.000 | 41 tok/s | 63 s``.
    Metrics that were not logged are left out.
    """
    parts = [f"iter {iteration}" + (f"/{total}" if total is not None else "")]
    for key, fmt in SUMMARY_FIELDS:
        value = _plain(metrics.get(key))
        if isinstance(value, (int, float)):
            parts.append(fmt.format(value))
    return " | ".join(parts)


def _plain(value: Any) -> Any:
    """JSON-friendly: keep str/bool/int/float/None, turn other scalars into float."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return float(value)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _tensorboard_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        from agentgym.install import install_command

        raise AgentGymError("TensorBoard logging needs the tensorboard package: "
                            f"{install_command('tensorboard')} "
                            "(or set logging.tensorboard: false)") from exc
    return SummaryWriter(log_dir=str(log_dir))


def _wandb_run(run_dir: Path, project: str | None, config: Any):
    try:
        import wandb
    except ImportError as exc:
        from agentgym.install import install_command

        raise AgentGymError("Weights & Biases logging needs the wandb package: "
                            f"{install_command('wandb')} (or set logging.wandb: false)") from exc
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return wandb.init(project=project, config=config, dir=str(run_dir))
