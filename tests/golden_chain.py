"""The chain-rollout golden fixture: every prompt id, sampled id, logprob and reward of a
few rollouts with the tiny model and fixed seeds, recorded before the rollout engine was
rewritten around strategies. ``test_rollout_golden`` replays the same runs and compares.

Re-record (only when a change is *meant* to alter chain rollouts):
``python -m tests.golden_chain``.
"""

from __future__ import annotations

import json
from pathlib import Path

import agentgym
from agentgym.policy import make_policy
from agentgym.policy.base import SamplingParams
from agentgym.prompting import PromptTemplate, template_for
from tests.toy_envs import CrashingEnv, EchoEnv, GuessEnv

FIXTURE = Path(__file__).parent / "data" / "golden_chain.json"

agentgym.register("test/GoldenGuess-v0", entry_point=GuessEnv, max_episode_steps=3)
agentgym.register("test/GoldenEcho-v0", entry_point=EchoEnv, max_episode_steps=5)
agentgym.register("test/GoldenCrash-v0", entry_point=CrashingEnv, max_episode_steps=4)

# name -> (env id, env kwargs, template env id or None, settings, seeds, max_new_tokens, stops)
CASES = {
    "guess_window": ("test/GoldenGuess-v0", {}, None,
                     dict(group_size=3, think=False), [11, 12], 6, ["</action>"]),
    "guess_conversation": ("test/GoldenGuess-v0", {}, None,
                           dict(group_size=3, think=False, context="conversation"), [5], 6,
                           ["</action>"]),
    "guess_think": ("test/GoldenGuess-v0", {}, None,
                    dict(group_size=2, think=True), [7], 12, ["</action>"]),
    "echo_raw": ("test/GoldenEcho-v0", {}, "raw",
                 dict(group_size=4, think=False), [3, 4], 5, []),
    "echo_raw_conversation": ("test/GoldenEcho-v0", {}, "raw",
                              dict(group_size=3, think=False, context="conversation"), [8], 5, []),
    "crash": ("test/GoldenCrash-v0", {}, "raw", dict(group_size=3, think=False), [2], 6,
              ["</action>"]),
    "textworld": ("agentgym/TextWorld-v0", {"num_games": 2}, "agentgym/TextWorld-v0",
                  dict(group_size=2, think=False), [0, 1], 8, ["</action>"]),
}


def play(name: str, policy=None):
    """Play one case; returns its episodes as plain data."""
    from agentgym.rollout import RolloutEngine, RolloutSettings  # noqa: PLC0415
    from agentgym.rollout.envpool import EnvPool  # noqa: PLC0415

    env_id, kwargs, template_id, settings, seeds, max_new, stops = CASES[name]
    policy = policy or make_policy("tiny-smollm2", seed=0)
    policy.generator.manual_seed(1234)
    template = (PromptTemplate(raw_action=True) if template_id == "raw" else
                template_for(template_id) if template_id else PromptTemplate())
    steps = 4 if env_id.startswith("agentgym/") else None
    pool = EnvPool(lambda: agentgym.make(env_id, max_episode_steps=steps, **kwargs),
                   workers=2, timeout_s=120.0)
    sampling = SamplingParams(max_new_tokens=max_new, temperature=1.0, stop_strings=stops)
    engine = RolloutEngine(policy, pool, template, RolloutSettings(sampling=sampling, **settings),
                           env_id=env_id, run_id="golden")
    try:
        episodes = engine.run(seeds, iteration=1)
    finally:
        pool.close()
    return [record(ep) for ep in episodes]


def record(ep) -> dict:
    return {
        "episode_id": ep.episode_id, "group_id": ep.group_id, "task_id": ep.task_id,
        "seed": ep.seed, "termination": ep.termination, "won": ep.won,
        "total_reward": ep.total_reward, "final_observation": ep.final_observation,
        "steps": [{"prompt_ids": s.prompt_ids, "response_ids": s.response_ids,
                   "logprobs": [round(x, 5) for x in s.logprobs],
                   "action": s.action, "action_valid": s.action_valid, "reward": s.reward,
                   "anchor": s.anchor, "observation": s.observation}
                  for s in ep.steps],
    }


if __name__ == "__main__":
    policy = make_policy("tiny-smollm2", seed=0)
    FIXTURE.write_text(json.dumps({name: play(name, policy) for name in CASES}, indent=None))
    print(f"wrote {FIXTURE}")
