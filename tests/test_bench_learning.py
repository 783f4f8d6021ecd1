"""tools/bench_learning.py: reading run directories, the interval, the collapse flag and
the report, on run directories written with the trainer's own MetricsLogger (no model);
one slow test trains a tiny model end to end."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.metrics import MetricsLogger

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
TEXTWORLD = str(ROOT / "configs" / "textworld_grpo.yaml")


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_learning", ROOT / "tools" / "bench_learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def fake_run(run_dir, before=0.25, after=0.5, invalid=(0.6, 0.2), entropy=(2.0, 1.5),
             success=(0.1, 0.3, 0.4)):
    """A run directory as the trainer leaves it: the eval before training at iteration 0,
    one record per iteration, the final eval in the last iteration's record."""
    last = len(success)
    with MetricsLogger(run_dir) as log:
        log.log(0, {"eval/success_rate": before, "eval/invalid_action_rate": invalid[0]})
        for it, rate in enumerate(success, 1):
            share = (it - 1) / max(1, last - 1)
            metrics = {"rollout/success_rate": rate, "rollout/invalid_action_rate": 0.5,
                       "actor/entropy": entropy[0] + share * (entropy[1] - entropy[0]),
                       "rollout/tokens_total": 100 * it, "time/elapsed_s": 10.0 * it}
            if it == last:
                metrics.update({"eval/success_rate": after, "eval/invalid_action_rate": invalid[1]})
            log.log(it, metrics)
    return run_dir


def test_read_seed_takes_the_trainers_eval_before_and_after(tmp_path):
    seed = bench.read_seed(fake_run(tmp_path / "run"))
    assert (seed["before"], seed["after"], seed["delta"]) == (0.25, 0.5, 0.25)
    assert (seed["invalid_before"], seed["invalid_after"]) == (0.6, 0.2)
    assert (seed["entropy_first"], seed["entropy_last"]) == (2.0, 1.5)
    assert (seed["final_elapsed_s"], seed["final_tokens_total"]) == (30.0, 300)
    assert [p["success"] for p in seed["curve"]] == [0.1, 0.3, 0.4]
    assert [p["tokens_total"] for p in seed["curve"]] == [100, 200, 300]


def test_read_seed_needs_both_evals(tmp_path):
    with MetricsLogger(tmp_path) as log:
        log.log(1, {"rollout/success_rate": 0.5})
    with pytest.raises(bench.AgentGymError, match="eval.tasks"):
        bench.read_seed(tmp_path)


def test_interval_is_the_t_interval_worked_by_hand():
    assert bench.t_quantile(0.975, 2) == pytest.approx(4.303, abs=5e-4)
    assert bench.t_quantile(0.975, 1) == pytest.approx(12.706, abs=5e-4)
    mean, half = bench.mean_interval([0.5, 0.7, 0.6])
    assert mean == pytest.approx(0.6)
    assert half == pytest.approx(4.303 * 0.1 / 3 ** 0.5, abs=1e-3)  # 0.2484
    assert bench.mean_interval([0.4]) == (0.4, None)


@pytest.mark.parametrize("kwargs, flagged", [
    ({"before": 0.25, "after": 0.25, "invalid": (0.6, 0.2)}, ["success did not rise"]),
    ({"before": 0.5, "after": 0.25, "invalid": (0.6, 0.2)}, ["success did not rise"]),
    ({"before": 0.25, "after": 0.5, "invalid": (0.6, 0.2)}, []),          # learnt
    ({"before": 0.25, "after": 0.25, "invalid": (0.6, 0.6)}, []),         # nothing moved
    ({"entropy": (2.0, 0.4)}, ["entropy fell"]),                          # 20 % of the first
    ({"entropy": (2.0, 0.6)}, []),                                        # 30 %
])
def test_collapse_flag(tmp_path, kwargs, flagged):
    reasons = bench.collapse_reasons(bench.read_seed(fake_run(tmp_path / "run", **kwargs)))
    assert len(reasons) == len(flagged)
    assert all(r.startswith(f) for r, f in zip(reasons, flagged))


def _fake_training(monkeypatch, outcomes):
    """Replace the training subprocess: seed s of a recipe writes the run ``outcomes[stem][s]``."""
    def train(command, log_path):
        args = dict(a.split("=", 1) for a in command if "=" in a)
        stem = Path(command[command.index("train") + 1]).stem
        fake_run(Path(args["logging.run_dir"]), **outcomes[stem][int(args["trainer.seed"])])
        return 1.5
    monkeypatch.setattr(bench, "train_seed", train)


def test_main_reports_seeds_intervals_and_the_last_line(tmp_path, monkeypatch, capsys):
    _fake_training(monkeypatch, {"quickstart": [
        {"before": 0.5, "after": 0.5}, {"before": 0.7, "after": 0.75}, {"before": 0.6, "after": 0.9}]})
    out = tmp_path / "bench"
    assert bench.main([QUICKSTART, "--seeds", "3", "--out", str(out),
                       "trainer.iterations=3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "bench_learning: before=0.600 after=0.717 seeds=3"
    assert "before 0.600 ± 0.248 (95 % t-interval, n=3)" in lines
    seed0 = next(line for line in lines if line.startswith("seed 0:"))
    assert "delta +0.000" in seed0 and "collapse: yes (success did not rise" in seed0
    assert "eval invalid 0.200" in seed0 and "entropy 1.500" in seed0
    summary = json.loads((out / "summary.json").read_text())
    run, = summary["benches"]
    assert [s["collapse"] for s in run["seeds"]] == [True, False, False]
    assert run["mean"]["before"] == pytest.approx(0.6)
    assert run["interval95"]["before"] == pytest.approx(0.2484, abs=1e-3)
    assert run["seeds"][1]["command"][-3:] == ["trainer.iterations=3", "trainer.seed=1",
                                               f"logging.run_dir={out / 'quickstart' / 'seed1'}"]
    assert (out / "bench_learning.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_prints_a_line_per_recipe_and_ends_with_the_first(tmp_path, monkeypatch, capsys):
    _fake_training(monkeypatch, {"quickstart": [{"before": 0.25, "after": 0.5}],
                                 "textworld_grpo": [{"before": 0.0, "after": 0.125}]})
    assert bench.main([QUICKSTART, "--seeds", "1", "--out", str(tmp_path),
                       "--compare", TEXTWORLD]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3:] == ["bench_learning quickstart: before=0.250 after=0.500 seeds=1",
                          "bench_learning textworld_grpo: before=0.000 after=0.125 seeds=1",
                          "bench_learning: before=0.250 after=0.500 seeds=1"]
    assert "before 0.250 (95 % interval undefined for one seed)" in lines


def test_bad_setups_fail_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "train_seed", lambda *a: pytest.fail("trained"))
    out = str(tmp_path)
    assert bench.main([QUICKSTART, "--out", out, "trainer.seed=4"]) == 2
    assert "trainer.seed is set by the bench" in capsys.readouterr().err
    assert bench.main([QUICKSTART, "--out", out, "eval.tasks=0"]) == 2
    assert "eval.tasks is 0" in capsys.readouterr().err
    assert bench.main([QUICKSTART, "--out", out, "trainer.lrr=1"]) == 2
    assert "trainer.lr" in capsys.readouterr().err
    from agentgym.checkpoint import PREFIX

    done = tmp_path / "quickstart" / "seed0" / "checkpoints" / f"{PREFIX}1"
    done.mkdir(parents=True)
    (done / "state.pt").write_bytes(b"")
    assert bench.main([QUICKSTART, "--out", out]) == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_on_a_tiny_model(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bench_learning.py"), str(ROOT / "configs" / "quickstart.yaml"),
         "--seeds", "1", "--out", str(tmp_path), "model.name=tiny-smollm2", "model.lora=null",
         "trainer.iterations=1", "eval.tasks=2"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("bench_learning: before=") and last.endswith(" seeds=1")
    summary = json.loads((tmp_path / "summary.json").read_text())
    seed, = summary["benches"][0]["seeds"]
    assert seed["final_iteration"] == 1 and seed["final_tokens_total"] > 0
    assert (tmp_path / "bench_learning.png").is_file()
