"""The tree recipes: each validates, and runs one iteration with the tiny model."""

import importlib.util
import json
from pathlib import Path

import pytest

from agentgym.config import load_config
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer

CONFIGS = Path(__file__).parents[1] / "configs"
RECIPES = {"tooluse_arpo": "arpo", "tooluse_treepo": "treepo", "tooluse_tree_grpo": "tree_grpo",
           "textworld_tree_grpo": "tree_grpo", "alfworld_tree_grpo": "tree_grpo"}
TINY = ["model.name=tiny-smollm2", "model.lora=null", "rollout.tasks_per_iteration=1",
        "rollout.max_new_tokens=8", "rollout.think=false", "trainer.iterations=1",
        "trainer.micro_batch=8", "eval.tasks=0", "rollout.env_workers=2",
        # small trees: 4 leaves per task
        "rollout.tree.trees=2", "rollout.tree.expansions=1", "rollout.tree.leaves=4",
        "rollout.arpo.budget=4", "rollout.arpo.initial=2", "rollout.arpo.beta=1.0"]
ENV = {"tooluse": ["env.kwargs.source=search", "env.kwargs.num_tasks=4", "env.max_episode_steps=3"],
       "textworld": ["env.max_episode_steps=3"],
       "alfworld": ["env.kwargs.num_games=1", "env.max_episode_steps=3"]}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_tree_recipes_validate(name):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.rollout.strategy == RECIPES[name]


def _one_iteration(name, tmp_path):
    run = tmp_path / name
    cfg = load_config(CONFIGS / f"{name}.yaml", TINY + ENV[name.split("_")[0]] +
                      [f"logging.run_dir={run}"])
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    with EpisodeStore(run / "episodes.db", readonly=True) as store:
        episodes = [store.get_episode(s.episode_id) for s in store.query(split="train", limit=None)]
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert len(episodes) == 4
    assert metrics["budget/generated_tokens"] > 0 and "budget/forks" in metrics
    trained = [s for ep in episodes for s in ep.steps if s.advantage is not None]
    assert trained
    return episodes, metrics


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tooluse_arpo", "tooluse_treepo", "tooluse_tree_grpo"])
def test_tool_use_tree_recipes_run_one_iteration(name, tmp_path):
    episodes, metrics = _one_iteration(name, tmp_path)
    assert metrics["budget/forks"] == sum(ep.parent_id is not None for ep in episodes)


@pytest.mark.slow
def test_textworld_tree_grpo_runs_one_iteration(tmp_path):
    episodes, metrics = _one_iteration("textworld_tree_grpo", tmp_path)
    assert sum(ep.parent_id is not None for ep in episodes) == 2
    assert metrics["budget/env_steps_replayed"] == sum(ep.branch_step for ep in episodes)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("alfworld") is None, reason="needs alfworld")
def test_alfworld_tree_grpo_runs_one_iteration(tmp_path, monkeypatch):
    from agentgym.envs.alfworld import suite

    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ALFWORLD_DATA", raising=False)
    suite.ensure_suite("train", 1, suite.default_cache_dir())
    episodes, _ = _one_iteration("alfworld_tree_grpo", tmp_path)
    assert sum(ep.parent_id is not None for ep in episodes) == 2
