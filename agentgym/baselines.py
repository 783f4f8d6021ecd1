"""Policies without a model, for baselines through ``agentgym eval --policy``:
``scripted`` follows the environment's ``walkthrough()`` (then random admissible
actions, if the plan runs out), ``random`` picks uniformly among the admissible actions.
They play the same eval tasks (seeds) as a model would and give the same episode
records, without tokens."""

from __future__ import annotations

import random
import time

from agentgym.checker import _Agent
from agentgym.config import Config
from agentgym.episode import FAILURE, MAX_STEPS, SUCCESS, Episode, Step
from agentgym.trainer import env_factory

AGENTS = ("scripted", "random")
SAFETY_STEPS = 1_000   # for an environment registered without a step limit


def play(cfg: Config, kind: str, seeds: list[int]) -> list[Episode]:
    if kind not in AGENTS:
        raise ValueError(f"baseline agent must be one of {', '.join(AGENTS)}, not {kind!r}")
    env = env_factory(cfg, "eval")()
    agent = _Agent(env, kind, random.Random(cfg.trainer.seed))
    episodes = []
    try:
        for seed in seeds:
            episodes.append(_episode(cfg, env, agent, kind, seed))
    finally:
        env.close()
    return episodes


def _episode(cfg: Config, env, agent: _Agent, kind: str, seed: int) -> Episode:
    obs, info = env.reset(seed=seed)
    agent.start()
    ep = Episode(run_id="eval", iteration=0, split="eval", group_id=f"eval-0-{seed}",
                 episode_id=f"eval-{kind}-{seed}", env_id=cfg.env.id,
                 task_id=str(info["task_id"]), seed=seed, task_type=info.get("task_type"))
    terminated = False
    for index in range(SAFETY_STEPS):
        action = agent.act(info)
        anchor = info["anchor"]
        t0 = time.perf_counter()
        next_obs, reward, terminated, truncated, info = env.step(action)
        ep.steps.append(Step(index=index, observation=obs, prompt_ids=[], response_ids=[],
                             logprobs=[], entropies=[], response_text=action, action=action,
                             action_valid=bool(info["action_valid"]), reward=float(reward),
                             anchor=anchor, timings={"env_s": time.perf_counter() - t0}))
        obs = next_obs
        if terminated or truncated:
            break
    ep.won = bool(info.get("won"))
    ep.total_reward = sum(s.reward for s in ep.steps)
    ep.termination = SUCCESS if ep.won else FAILURE if terminated else MAX_STEPS
    ep.final_observation = obs
    return ep
