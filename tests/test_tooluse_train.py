"""ToolUse-v0 end to end with the tiny model: GRPO and OTC-GRPO iterations from the recipes."""

import json

import pytest
import torch

from agentgym.config import load_config
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer

SMALL = ["model.name=tiny-smollm2", "model.lora=null", "env.kwargs.source=search",
         "env.kwargs.num_tasks=4", "rollout.tasks_per_iteration=2", "rollout.group_size=2",
         "rollout.max_new_tokens=8", "env.max_episode_steps=2", "trainer.iterations=1",
         "trainer.micro_batch=4", "eval.tasks=0"]


def _train(recipe, run):
    trainer = Trainer(load_config(recipe, SMALL + [f"logging.run_dir={run}"]))
    try:
        trainer.train()
    finally:
        trainer.close()
    with EpisodeStore(run / "episodes.db") as store:
        return [store.get_episode(s.episode_id) for s in store.query(split="train", limit=100)]


@pytest.mark.slow
def test_grpo_and_otc_recipes_train_on_tool_use(tmp_path):
    episodes = _train("configs/tooluse_grpo.yaml", tmp_path / "grpo")
    assert len(episodes) == 4
    assert all(ep.steps and ep.task_id.startswith("search:") for ep in episodes)
    assert all(s.advantage is not None for ep in episodes for s in ep.steps)

    run = tmp_path / "otc"
    episodes = _train("configs/tooluse_otc.yaml", run)
    assert all(s.advantage is not None for ep in episodes for s in ep.steps)
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert "tool/calls_per_episode" in metrics and "tool/otc_reward_mean" in metrics
    # OTC-GRPO's per-question minima are kept with the checkpoint
    state = torch.load(run / "checkpoints" / "iter_000001" / "state.pt", weights_only=False)
    assert "otc" in state["extra"]
