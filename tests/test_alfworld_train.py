"""A short GRPO run on ALFWorld with the tiny model, end to end (the recipe's settings)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

# find_spec, not an import: importing alfworld rewrites $ALFWORLD_DATA
if importlib.util.find_spec("alfworld") is None:
    pytest.skip("needs the alfworld package", allow_module_level=True)


@pytest.mark.slow
def test_grpo_on_alfworld_runs_end_to_end(tmp_path, monkeypatch):
    from agentgym.envs.alfworld import suite

    from agentgym.config import load_config
    from agentgym.store import EpisodeStore
    from agentgym.trainer import Trainer

    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTGYM_CACHE", str(cache))
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    suite.ensure_suite("train", 2, suite.default_cache_dir())
    recipe = Path(__file__).parents[1] / "configs" / "alfworld_grpo.yaml"
    assert yaml.safe_load(recipe.read_text())["env"]["id"] == "agentgym/ALFWorld-v0"
    run = tmp_path / "run"
    cfg = load_config(str(recipe), [
        "model.name=tiny-smollm2", "model.lora=null", "env.kwargs.num_games=2",
        "env.max_episode_steps=3", "rollout.tasks_per_iteration=1", "rollout.group_size=2",
        "rollout.max_new_tokens=8", "rollout.think=false", "rollout.env_workers=2",
        "trainer.iterations=1", "trainer.checkpoint_every=1", "trainer.eval_every=0",
        "trainer.micro_batch=4", "eval.tasks=0", f"logging.run_dir={run}"])
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    with EpisodeStore(run / "episodes.db") as store:
        episodes = [store.get_episode(e.episode_id) for e in store.query(split="train")]
    assert len(episodes) == 2 and {ep.task_id for ep in episodes} <= {"alfworld-train-0",
                                                                      "alfworld-train-1"}
    assert {ep.task_type for ep in episodes} <= {"pick_and_place_simple", "look_at_obj_in_light"}
    assert all(1 <= ep.length <= 3 for ep in episodes)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("rollout/success_rate" in line for line in lines)
