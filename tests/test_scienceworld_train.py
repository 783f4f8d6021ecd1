"""One iteration of each ScienceWorld recipe with the tiny model, end to end: worker
processes with a JVM each, rollout, update, episode store (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("scienceworld")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None,
                       reason="needs Java (apt-get install default-jre-headless)"),
]


@pytest.mark.parametrize("recipe", ["scienceworld_grpo", "scienceworld_epo"])
def test_recipe_runs_one_iteration(tmp_path, recipe):
    from agentgym.config import load_config
    from agentgym.envs.scienceworld.tasks import SUITES
    from agentgym.store import EpisodeStore
    from agentgym.trainer import Trainer

    run = tmp_path / "run"
    cfg = load_config(str(Path(__file__).parents[1] / "configs" / f"{recipe}.yaml"), [
        "model.name=tiny-smollm2", "model.lora=null", "env.max_episode_steps=3",
        "rollout.tasks_per_iteration=1", "rollout.group_size=2", "rollout.max_new_tokens=8",
        "rollout.env_workers=2", "trainer.iterations=1", "trainer.checkpoint_every=1",
        "trainer.eval_every=0", "trainer.micro_batch=4", "eval.tasks=0",
        f"logging.run_dir={run}"])
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    with EpisodeStore(run / "episodes.db") as store:
        episodes = [store.get_episode(e.episode_id) for e in store.query(split="train")]
    assert len(episodes) == 2 and len({ep.task_id for ep in episodes}) == 1  # one group
    assert episodes[0].task_type in SUITES["short"] and episodes[0].error is None
    assert all(1 <= ep.length <= 3 for ep in episodes)
    assert all(s.observation for ep in episodes for s in ep.steps)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("rollout/success_rate" in line for line in lines)
    assert any("loss/epo" in line for line in lines) == recipe.endswith("epo")
