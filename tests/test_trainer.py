"""End to end with the tiny model: train, store, metrics, checkpoints, resume, eval."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

import agentgym
from agentgym.cli import main
from agentgym.config import load_config
from agentgym.errors import AgentGymError
from agentgym.prompting import PromptTemplate, register_template
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer
from tests.toy_envs import GuessEnv

agentgym.register("test/TrainGuess-v0", entry_point=GuessEnv, max_episode_steps=3)

BASE = [
    "env.id=test/TrainGuess-v0", "model.name=tiny-smollm2",
    "rollout.tasks_per_iteration=2", "rollout.group_size=3", "rollout.max_new_tokens=6",
    "rollout.think=false", "trainer.lr=1e-3", "trainer.micro_batch=4", "trainer.checkpoint_every=1",
]


def _train(run_dir, *extra, resume=False):
    cfg = load_config(None, BASE + [f"logging.run_dir={run_dir}", *extra])
    trainer = Trainer(cfg, resume=resume)
    try:
        trainer.train()
    finally:
        trainer.close()
    return run_dir


def _weights(run_dir, iteration):
    return load_file(str(run_dir / "checkpoints" / f"iter_{iteration:06d}" / "model" / "model.safetensors"))


def test_training_writes_store_metrics_plot_and_checkpoints(tmp_path, capsys):
    # the tiny random model never wins, so advantages are all 0: the entropy bonus
    # still gives the update a gradient to show that it trains
    run = _train(tmp_path / "run", "trainer.iterations=2", "eval.tasks=2",
                 "algorithm.loss.entropy_coef=0.01")
    with EpisodeStore(run / "episodes.db") as store:
        assert store.count(split="train") == 2 * 2 * 3
        assert store.count(split="eval") == 2 + 2  # before training and at the end
        summary = store.query(split="train", limit=1)[0]
        episode = store.get_episode(summary.episode_id)
        assert all(s.advantage is not None for s in episode.steps)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [0, 1, 2]
    assert "eval/invalid_action_rate" in lines[0]
    for key in ("rollout/success_rate", "loss/policy", "perf/tokens_per_s", "actor/grad_norm"):
        assert key in lines[1]
    assert "eval/success_rate" in lines[-1]
    out = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert any(line.startswith("eval before training: success 0.00 | invalid actions ")
               for line in out)
    assert out[-1].startswith("eval before → after training: success 0.00 → 0.00 | "
                              "invalid actions ")
    assert (run / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "checkpoints" / "iter_000002" / "state.pt").is_file()
    # the update changed the weights
    first, second = _weights(run, 1), _weights(run, 2)
    assert any(not torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("ppo", [[], ["trainer.ppo_epochs=2", "trainer.mini_batch_size=4"]],
                         ids=["one-step", "epochs-2"])
def test_resume_is_equivalent_to_a_straight_run(tmp_path, ppo):
    # the entropy bonus gives a gradient (the tiny model never wins): a resume that
    # used the cut run's learning rate schedule would then diverge
    bonus = ["algorithm.loss.entropy_coef=0.01", *ppo]
    straight = _train(tmp_path / "straight", "trainer.iterations=2", *bonus)
    if ppo:
        # several steps per iteration: the cosine over 1 iteration differs from the first
        # half of one over 2, so cut the straight run itself after its first iteration
        cut = tmp_path / "cut"
        shutil.copytree(straight, cut)
        shutil.rmtree(cut / "checkpoints" / "iter_000002")
    else:
        cut = _train(tmp_path / "cut", "trainer.iterations=1", *bonus)
    _train(cut, "trainer.iterations=2", *bonus, resume=True)
    a, b = _weights(straight, 2), _weights(cut, 2)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with EpisodeStore(cut / "episodes.db") as store:
        assert store.count(split="train") == 2 * 2 * 3


def test_new_run_refuses_to_overwrite_and_cli_resume_extends(tmp_path, capsys):
    run = _train(tmp_path / "run", "trainer.iterations=1")
    with pytest.raises(AgentGymError, match="--resume"):
        _train(run, "trainer.iterations=1")
    assert main(["train", "--resume", str(run), "trainer.iterations=2"]) == 0
    assert (run / "checkpoints" / "iter_000002").is_dir()


def test_cli_reports_config_errors_without_traceback(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("trainer:\n  iterashuns: 3\n")
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    assert "trainer.iterashuns" in err and "trainer.iterations" in err and "Traceback" not in err


def test_eval_command_with_checkpoint_prints_table(tmp_path, capsys):
    run = _train(tmp_path / "run", "trainer.iterations=1")
    config = tmp_path / "eval.yaml"
    config.write_text("\n".join(f"{k}: {v}" for k, v in (
        ("env", "{id: test/TrainGuess-v0}"), ("model", "{name: tiny-smollm2}"),
        ("rollout", "{max_new_tokens: 6, think: false}"), ("eval", "{tasks: 3}"))) + "\n")
    store = tmp_path / "eval.db"
    assert main(["eval", str(config), "--checkpoint", str(run), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "weights from" in out and "iter_000001" in out
    assert "success" in out and "3" in out
    with EpisodeStore(store) as s:
        assert s.count(split="eval") == 3
    assert main(["eval", str(config), "eval.tasks=0"]) == 2
    assert "eval.tasks is 0" in capsys.readouterr().err


def test_eval_baselines_need_no_model(tmp_path, capsys):
    config = tmp_path / "eval.yaml"
    config.write_text("env: {id: test/TrainGuess-v0}\neval: {tasks: 4}\n")
    store = tmp_path / "baseline.db"
    assert main(["eval", str(config), "--policy", "scripted", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "eval of scripted" in out and "100.0%" in out      # the walkthrough always wins
    with EpisodeStore(store) as s:
        episodes = [s.get_episode(e.episode_id) for e in s.query(split="eval", limit=10)]
    assert len(episodes) == 4 and all(ep.won and ep.length == 1 for ep in episodes)
    assert main(["eval", str(config), "--policy", "random"]) == 0
    assert "eval of random" in capsys.readouterr().out
    assert main(["eval", str(config), "--policy", "random", "--checkpoint", "x"]) == 2
    assert "plays without a model" in capsys.readouterr().err


# --- step-level credit and EPO recipes ----------------------------------------------

def _recipe_overrides(name):
    """The ``algorithm`` section of configs/textworld_NAME.yaml as key=value overrides."""
    from omegaconf import OmegaConf

    section = OmegaConf.load(f"configs/textworld_{name}.yaml").algorithm
    flat = OmegaConf.to_container(section)

    def walk(prefix, node):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(f"{prefix}{key}.", value)
            else:
                yield f"{prefix}{key}={value}"
    return list(walk("algorithm.", flat))


@pytest.mark.parametrize("recipe, expected", [
    ("gigpo", ("credit/singleton_share", "credit/step_group_size_mean", "credit/adv_step_std")),
    ("salt", ("credit/salt_node_size_mean", "credit/adv_salt_mean")),
    ("empg", ("credit/step_entropy_mean", "credit/empg_shift")),
    ("epo", ("epo/entropy", "epo/beta", "loss/epo")),
])
def test_one_iteration_with_each_recipe(tmp_path, recipe, expected):
    run = _train(tmp_path / recipe, "trainer.iterations=1", *_recipe_overrides(recipe))
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    for key in expected:
        assert key in metrics, key
    part = {"gigpo": "step", "salt": "salt", "empg": "empg_scale", "epo": "episode"}[recipe]
    with EpisodeStore(run / "episodes.db") as store:
        episode = store.get_episode(store.query(split="train", limit=1)[0].episode_id)
        assert all(part in s.advantage_parts for s in episode.steps)


def test_epo_history_survives_resume(tmp_path):
    # a tight band, so the smoothing penalty (which reads the history) is active
    epo = ["algorithm.loss.entropy=epo", "algorithm.loss.epo.kappa_low=0.999",
           "algorithm.loss.epo.kappa_high=1.0"]
    cut = _train(tmp_path / "cut", "trainer.iterations=1", *epo)

    def history(it):
        state = torch.load(cut / "checkpoints" / f"iter_{it:06d}" / "state.pt", weights_only=False)
        return state["extra"]["epo_history"]["values"]

    first = history(1)
    assert len(first) == 1
    _train(cut, "trainer.iterations=2", *epo, resume=True)
    assert len(history(2)) == 2 and history(2)[0] == first[0]
    records = [json.loads(line) for line in (cut / "metrics.jsonl").read_text().splitlines()]
    assert "epo/history_mean" not in records[0]                 # no smoothing at k = 0
    # the resumed iteration smoothed against the restored history
    assert records[-1]["epo/history_mean"] == pytest.approx(first[0])
    assert records[-1]["epo/band_high"] == pytest.approx(first[0])
    assert records[-1]["epo/smooth"] > 0


def test_compare_runs_plots_curves_and_prints_table(tmp_path, capsys):
    import importlib.util

    from agentgym.metrics import MetricsLogger

    spec = importlib.util.spec_from_file_location("compare_runs", "tools/compare_runs.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    for name, rates in (("grpo", [0.0, 0.25, 0.5]), ("gigpo", [0.25, 0.5, 0.75])):
        with MetricsLogger(tmp_path / name) as log:
            for it, rate in enumerate(rates, 1):
                log.log(it, {"rollout/success_rate": rate})
            log.log(3, {"eval/success_rate": rate})
    out = tmp_path / "cmp.png"
    assert compare.main([str(tmp_path / "grpo"), str(tmp_path / "gigpo"), "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "gigpo" in text and "0.750" in text and "eval/success_rate" in text
    (tmp_path / "empty").mkdir()
    assert compare.main([str(tmp_path / "empty")]) == 2
    # rich wraps long lines (this one holds the tmp path) wherever the width falls
    assert "no metrics" in " ".join(capsys.readouterr().out.split())


class ParityEnv(GuessEnv):
    """One step; any action wins on even seeds and loses on odd ones (one task type)."""

    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        self.even = seed % 2 == 0
        return obs, {**info, "task_type": "parity"}

    def step(self, action):
        return "Done.", float(self.even), True, False, {**self._info(), "won": self.even,
                                                         "task_type": "parity"}


agentgym.register("test/Parity-v0", entry_point=ParityEnv, max_episode_steps=1)
register_template("test/Parity-v0", PromptTemplate(system="Say anything.", raw_action=True))


def test_arpo_replays_successes_into_all_failed_groups_and_resumes(tmp_path):
    arpo = ["env.id=test/Parity-v0", "rollout.tasks_per_iteration=4",
            "algorithm.replay=arpo", "algorithm.arpo.key=task_type"]
    run = _train(tmp_path / "arpo", "trainer.iterations=2", *arpo)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["arpo/buffer_episodes"] > 0
    # from the second iteration on, every all-failed (odd-seed) group gets a success
    assert records[1]["arpo/replaced_groups"] == records[1]["arpo/all_failed_groups"] > 0
    with EpisodeStore(run / "episodes.db") as store:
        replayed = [e for e in store.query(iteration=2, limit=100) if e.episode_id.endswith("-replay")]
        assert len(replayed) == records[1]["arpo/replaced_groups"] and all(e.won for e in replayed)
    state = torch.load(run / "checkpoints" / "iter_000002" / "state.pt", weights_only=False)
    assert state["extra"]["arpo"]["buffers"]["parity"]
    _train(run, "trainer.iterations=3", *arpo, resume=True)
    resumed = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    # the buffer came back with the checkpoint: nothing was lost, failures still get replays
    assert resumed["arpo/buffer_episodes"] >= records[1]["arpo/buffer_episodes"]
    assert resumed["arpo/replaced_groups"] == resumed["arpo/all_failed_groups"]


class LengthParityEnv(ParityEnv):
    """On even seeds, wins when the reply has an even number of characters (the tiny
    model's random replies give mixed groups); odd seeds always lose (flat groups)."""

    def step(self, action):
        won = self.even and len(action) % 2 == 0
        return "Done.", float(won), True, False, {**self._info(), "won": won, "task_type": "parity"}


agentgym.register("test/LengthParity-v0", entry_point=LengthParityEnv, max_episode_steps=1)
register_template("test/LengthParity-v0", PromptTemplate(system="Say anything.", raw_action=True))


def test_zero_variance_filter_refills_the_batch_and_reports_retries(tmp_path):
    # ParityEnv: every group's returns are all equal, so nothing is informative and the
    # filter plays max_retries more rollouts, then trains on the batch as played
    flat = ["env.id=test/Parity-v0", "algorithm.filter.zero_variance_groups=true",
            "algorithm.filter.max_retries=2"]
    run = _train(tmp_path / "flat", "trainer.iterations=1", *flat)
    m = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert (m["filter/kept_groups"], m["filter/retries"], m["filter/dropped_groups"]) == (0, 2, 6)
    with EpisodeStore(run / "episodes.db") as store:
        assert store.count(split="train") == 6 * 3
        ids = [e.episode_id for e in store.query(split="train", limit=100)]
        assert sum("refill2" in i for i in ids) == 2 * 3
    mixed = ["env.id=test/LengthParity-v0", "algorithm.filter.zero_variance_groups=true",
             "algorithm.filter.max_retries=3", "rollout.temperature=2.0"]
    run = _train(tmp_path / "mixed", "trainer.iterations=1", *mixed)
    m = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert m["filter/kept_groups"] >= 1 and m["filter/retries"] <= 3
    # only the kept groups were trained on, and none of them has all-equal returns
    assert m["credit/zero_variance_groups"] == 0.0
