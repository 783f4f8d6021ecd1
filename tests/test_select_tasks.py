"""Task selection: the pure selection rule (fast), and the command on MiniWoB with the
tiny model plus one iteration of the ARPO recipe there (slow, real browser)."""

import json
import shutil

import pytest
import yaml

from agentgym.episode import Episode
from agentgym.errors import AgentGymError
from agentgym.select_tasks import select, success_by_task, write_selection


def _ep(task, won):
    return Episode(run_id="r", iteration=0, split="train", group_id="g", episode_id="e",
                   env_id="x", task_id=f"{task}:1", seed=1, won=won, task_type=task)


def test_success_by_task_and_selection(tmp_path):
    eps = [_ep("a", True), _ep("a", False), _ep("b", False), _ep("c", True)]
    stats = success_by_task(eps)
    assert stats == {"a": (2, 1), "b": (1, 0), "c": (1, 1)}
    assert select(stats) == ["a", "c"]
    assert select(stats, max_success=0.9) == ["a"]
    with pytest.raises(AgentGymError):
        select(stats, min_success=0.5, max_success=0.5)
    path = write_selection(tmp_path / "sel.yaml", stats, ["a", "c"], 0.0, 1.0)
    doc = yaml.safe_load(path.read_text())
    assert doc["env"]["kwargs"]["task"] == "a,c"
    assert doc["selection"]["success"] == {"a": 0.5, "b": 0.0, "c": 1.0}


MINIWOB = ["env.id=agentgym/MiniWoB-v0", "env.kwargs.task=click-test,click-button",
           "env.kwargs.screenshot=false", "env.max_episode_steps=2", "model.name=tiny-smollm2",
           "rollout.max_new_tokens=8", "rollout.think=false", "rollout.env_workers=2"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="needs chromium-driver")
def test_select_tasks_command_and_one_arpo_iteration_on_miniwob(tmp_path, capsys):
    pytest.importorskip("miniwob")
    from agentgym.cli import main

    config = tmp_path / "miniwob.yaml"
    config.write_text(yaml.safe_dump({"logging": {"run_dir": str(tmp_path / "sel")}}))
    out = tmp_path / "sel.yaml"
    assert main(["select-tasks", str(config), *MINIWOB, "--episodes", "2", "--out", str(out)]) == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["selection"]["episodes"] == {"click-button": 2, "click-test": 2}
    selected = [t for t in doc["env"]["kwargs"]["task"].split(",") if t]
    assert selected == [t for t, v in doc["selection"]["success"].items() if v > 0]
    assert "tasks selected" in capsys.readouterr().out

    # one iteration of the ARPO recipe end to end: browser rollouts, replay, credit,
    # update, store
    from agentgym.config import load_config
    from agentgym.store import EpisodeStore
    from agentgym.trainer import Trainer

    cfg = load_config("configs/miniwob_arpo.yaml", MINIWOB + [
        "model.lora=null", "rollout.tasks_per_iteration=2", "rollout.group_size=2",
        "trainer.iterations=1", "trainer.micro_batch=4", "eval.tasks=0",
        f"logging.run_dir={tmp_path / 'run'}"])
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    metrics = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "rollout/success_rate" in metrics and "actor/grad_norm" in metrics
    assert "arpo/buffer_episodes" in metrics and "arpo/all_failed_groups" in metrics
    with EpisodeStore(tmp_path / "run" / "episodes.db") as store:
        rows = store.query(split="train", limit=10)
    assert len(rows) == 4 and {r.env_id for r in rows} == {"agentgym/MiniWoB-v0"}
