"""Metrics logging: the JSONL record, crash tolerance, plots, the summary line, lazy TB/W&B."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from agentgym.errors import AgentGymError
from agentgym.metrics import (METRICS_FILE, MetricsLogger, choose_panels, comparison_line,
                              eval_line, merge_iterations, plot_metrics, read_metrics,
                              summary_line)


def test_jsonl_round_trip(tmp_path):
    with MetricsLogger(tmp_path / "run") as logger:
        logger.log(0, {"rollout/success_rate": 0.25, "loss/policy": np.float32(-0.5),
                       "perf/tokens_per_s": np.int64(41), "note": "warm-up"})
        logger.log(1, {"rollout/success_rate": 0.5})
        # flushed per line: readable before close
        assert [r["iteration"] for r in read_metrics(tmp_path / "run")] == [0, 1]
    records = read_metrics(tmp_path / "run")
    assert records[0]["loss/policy"] == -0.5 and records[0]["perf/tokens_per_s"] == 41
    assert records[0]["note"] == "warm-up" and records[1] == {
        "iteration": 1, "time": records[1]["time"], "rollout/success_rate": 0.5}
    assert records[0]["time"] <= records[1]["time"]


def test_truncated_last_line_is_tolerated_and_repaired(tmp_path):
    with MetricsLogger(tmp_path) as logger:
        logger.log(0, {"loss/policy": 1.0})
    with (tmp_path / METRICS_FILE).open("a") as f:
        f.write('{"iteration": 1, "loss/po')  # the process died mid-write
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [0]
    with MetricsLogger(tmp_path) as logger:  # a resumed run appends cleanly after it
        logger.log(1, {"loss/policy": 0.5})
    assert [(r["iteration"], r["loss/policy"]) for r in read_metrics(tmp_path)] == [
        (0, 1.0), (1, 0.5)]


def test_read_metrics_of_missing_runs(tmp_path):
    assert read_metrics(tmp_path) == []
    with pytest.raises(AgentGymError, match="no run directory"):
        read_metrics(tmp_path / "nope")


def test_merge_iterations():
    records = [{"iteration": 1, "a": 1}, {"iteration": 0, "a": 0}, {"iteration": 1, "eval": 2},
               {"iteration": 1, "a": 3}]
    assert merge_iterations(records) == [{"iteration": 0, "a": 0},
                                         {"iteration": 1, "a": 3, "eval": 2}]


def test_plot_writes_a_png(tmp_path):
    assert plot_metrics(tmp_path) is None  # nothing logged yet
    with MetricsLogger(tmp_path) as logger:
        for i in range(5):
            logger.log(i, {"rollout/success_rate": i / 5, "loss/kl": 0.01 * i,
                           "other/unplotted": 1.0})
            if i % 2 == 0:
                logger.log(i, {"eval/success_rate": 0.1 * i})
        path = logger.plot()
    assert path == tmp_path / "learning_curves.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


def test_plot_falls_back_to_the_first_keys(tmp_path):
    with MetricsLogger(tmp_path) as logger:
        logger.log(0, {"custom/a": 1.0, "custom/b": 2.0, "text": "x"})
    assert plot_metrics(tmp_path).read_bytes()[:4] == b"\x89PNG"


def test_panels_join_train_and_eval_and_hide_kl_when_it_is_off():
    logged = ["rollout/success_rate", "eval/success_rate", "loss/kl", "eval/invalid_action_rate"]
    on = {"algorithm": {"loss": {"kl_coef": 0.01}}}
    assert choose_panels(logged, on) == [
        ("success rate", ["rollout/success_rate", "eval/success_rate"]),
        ("invalid-action rate", ["eval/invalid_action_rate"]), ("loss/kl", ["loss/kl"])]
    off = {"algorithm": {"loss": {"kl_coef": 0.0}}}
    assert [t for t, _ in choose_panels(logged, off)] == ["success rate", "invalid-action rate"]
    assert choose_panels(["custom/a"], off) == [("custom/a", ["custom/a"])]


def test_plot_is_titled_with_integer_iteration_ticks(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("env: {id: agentgym/TextWorld-v0}\n"
                                          "model: {name: tiny-smollm2}\n")
    with MetricsLogger(tmp_path) as logger:
        for i in range(3):
            logger.log(i, {"rollout/success_rate": 0.5, "loss/policy": 1000.0 + 1e-4 * i})
    import matplotlib.figure

    figures = []
    real = matplotlib.figure.Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    plot_metrics(tmp_path)
    fig, = figures
    assert fig.get_suptitle() == f"{tmp_path.name} · agentgym/TextWorld-v0 · tiny-smollm2"
    success, loss = fig.axes
    assert success.get_ylim() == (-0.05, 1.05)
    ticks = [t for t in success.get_xticks() if 0 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert loss.yaxis.get_major_formatter().get_offset() == ""  # no "+1e3" offset


def test_eval_and_comparison_lines():
    before = {"eval/success_rate": 0.125, "eval/invalid_action_rate": 0.625,
              "eval/parse_failure_rate": 0.417}
    after = {"eval/success_rate": 0.25, "eval/invalid_action_rate": 0.208,
             "eval/parse_failure_rate": 0.0}
    assert eval_line("eval before training", before) == (
        "eval before training: success 0.12 | invalid actions 0.62 | parse failures 0.42")
    assert comparison_line(before, after) == (
        "eval before → after training: success 0.12 → 0.25 | invalid actions 0.62 → 0.21 "
        "| parse failures 0.42 → 0.00")


def test_summary_line():
    metrics = {"rollout/success_rate": 0.25, "rollout/reward_mean": 0.3125,
               "rollout/episode_length": 7.2, "loss/policy": -0.0121, "loss/kl": 0.0,
               "perf/tokens_per_s": np.float32(41.4), "perf/iteration_s": 63.2}
    assert summary_line(3, metrics, total=10) == (
        "iter 3/10 | success 0.25 | reward 0.31 | len 7.2 | loss -0.012 | kl 0.000 "
        "| 41 tok/s | 63 s")
    metrics.update({"rollout/invalid_action_rate": 0.625, "rollout/parse_failure_rate": 0.0})
    assert "| invalid 0.62 | unparsed 0.00 |" in summary_line(3, metrics)
    assert summary_line(0, {"eval/success_rate": 0.5, "note": "x"}) == "iter 0 | eval 0.50"


def test_tensorboard_is_off_by_default_and_not_imported(tmp_path):
    code = ("import sys; from agentgym.metrics import MetricsLogger\n"
            "with MetricsLogger(sys.argv[1]) as m: m.log(0, {'loss/policy': 1.0})\n"
            "print(json.dumps([n for n in sys.modules if 'tensorboard' in n or 'wandb' in n]))")
    out = subprocess.run([sys.executable, "-c", "import json\n" + code, str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
    assert not (tmp_path / "tensorboard").exists()


@pytest.mark.parametrize("option, module, extra", [
    ("tensorboard", "torch.utils.tensorboard", "[tensorboard]"),
    ("wandb", "wandb", "[wandb]")])
def test_missing_optional_backend_says_what_to_install(tmp_path, monkeypatch, option, module,
                                                       extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(AgentGymError, match=re.escape(extra)):
        MetricsLogger(tmp_path, **{option: True})


def test_plot_draws_success_against_wall_clock_and_tokens(tmp_path, monkeypatch):
    with MetricsLogger(tmp_path) as logger:
        for i in range(1, 4):
            logger.log(i, {"rollout/success_rate": i / 4, "time/elapsed_s": 10.0 * i,
                           "rollout/tokens_total": 100 * i})
    import matplotlib.figure

    figures = []
    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *a, **k: (figures.append(fig), real(fig, *a, **k))[1])
    plot_metrics(tmp_path)
    titles = [ax.get_title() for ax in figures[0].axes]
    assert titles == ["success rate", "success rate vs wall-clock s",
                      "success rate vs generated tokens"]
    assert list(figures[0].axes[2].lines[0].get_xdata()) == [100, 200, 300]
