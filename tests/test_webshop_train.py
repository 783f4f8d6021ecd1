"""The WebShop recipes run end to end with the tiny model: rollouts, update, store, eval."""

import json

import pytest

from agentgym.config import load_config
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer

TINY = ["model.name=tiny-smollm2", "model.lora=null", "env.kwargs.num_products=300",
        "rollout.tasks_per_iteration=2", "rollout.group_size=2", "rollout.max_new_tokens=8",
        "trainer.iterations=1", "trainer.micro_batch=4", "trainer.checkpoint_every=1",
        "eval.tasks=1", "env.max_episode_steps=2", "algorithm.loss.entropy_coef=0.01"]


@pytest.mark.parametrize("recipe", ["grpo", "gigpo"])
def test_recipes_are_valid_configs(recipe):
    cfg = load_config(f"configs/webshop_{recipe}.yaml", [])
    assert cfg.env.id == "agentgym/WebShop-v0" and cfg.env.kwargs["reward"] == "score"
    assert cfg.algorithm.advantage.step == ("gigpo" if recipe == "gigpo" else "none")


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["gigpo"])
def test_recipe_trains_one_iteration_with_the_tiny_model(tmp_path, recipe):
    cfg = load_config(f"configs/webshop_{recipe}.yaml",
                      TINY + [f"logging.run_dir={tmp_path / recipe}"])
    assert cfg.env.id == "agentgym/WebShop-v0"
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    run = tmp_path / recipe
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert "rollout/success_rate" in metrics and "eval/success_rate" in metrics
    with EpisodeStore(run / "episodes.db") as store:
        # eval runs before training and at the end: 2 x eval.tasks
        assert store.count(split="train") == 4 and store.count(split="eval") == 2
        episode = store.get_episode(store.query(split="train", limit=1)[0].episode_id)
        assert episode.steps and episode.steps[0].observation.startswith("WebShop [SEP] Instruction:")
