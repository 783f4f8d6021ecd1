"""Run directories for the replay/export tests, played in a real (toy) environment."""

from __future__ import annotations

import base64
from pathlib import Path

import agentgym
from agentgym.episode import FAILURE, MAX_STEPS, SUCCESS, Episode, Step
from agentgym.metrics import MetricsLogger
from agentgym.store import EpisodeStore
from tests.toy_envs import GuessEnv

ENV_ID = "test/ReplayGuess-v0"
MAX_STEPS_ = 4
if ENV_ID not in agentgym.registry.gymnasium.registry:
    agentgym.register(ENV_ID, entry_point=GuessEnv, max_episode_steps=MAX_STEPS_)

# a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwAB"
                       "BAEAwS2OUAAAAABJRU5ErkJggg==")


def play(seed: int, actions: list[str | None], *, iteration: int, split: str, group: str,
         member: int, run_id: str = "replay-test") -> Episode:
    """Play ``actions`` in a fresh environment the way the rollout engine records it."""
    env = agentgym.make(ENV_ID)
    obs, info = env.reset(seed=seed)
    ep = Episode(run_id=run_id, iteration=iteration, split=split, group_id=group,
                 episode_id=f"{group}-{member}", env_id=ENV_ID, task_id=info["task_id"],
                 seed=seed, task_type="guess-even" if seed % 2 == 0 else "guess-odd")
    ep.termination = MAX_STEPS
    for k, action in enumerate(actions):
        text = f"<action>{action}</action>" if action else "hmm"
        n = len(text)
        step = Step(index=k, observation=obs, prompt_ids=[1, 2, 3, 10 + k] * 8,
                    response_ids=[100 + i for i in range(n)],
                    logprobs=[-0.25 * (i % 4) for i in range(n)],
                    entropies=[0.5 * (i % 3) for i in range(n)], response_text=text,
                    action=action, action_valid=False, reward=0.0,
                    anchor=str(info.get("anchor", obs)),
                    timings={"generate_s": 0.5, "env_s": 0.001}, advantage=0.0,
                    advantage_parts={"episode": 0.0, "step": 0.1 * k},
                    info={"finish_reason": "stop"})
        obs, reward, terminated, truncated, info = env.step(action or "")
        step.reward, step.action_valid = float(reward), bool(info["action_valid"]) and bool(action)
        ep.steps.append(step)
        ep.total_reward += step.reward
        if terminated or truncated:
            ep.won = bool(info["won"])
            ep.termination = SUCCESS if ep.won else (FAILURE if terminated else MAX_STEPS)
            break
    else:
        assert len(actions) < MAX_STEPS_, "a stored episode ends when the environment says so"
    ep.final_observation = obs
    env.close()
    return ep


def make_run(run_dir: Path) -> Path:
    """Two iterations of two 3-member groups, an eval episode, an error, an image, metrics."""
    plans = [["guess 3", "guess 1", "guess 2", "guess 5"],
             ["guess 3", "guess 4", "guess 1", "guess 1"],
             [None, "guess 3", "guess 2", "guess 2"]]
    episodes = []
    for iteration in (1, 2):
        for task in range(2):
            seed = 10 * iteration + task
            for member, plan in enumerate(plans):
                ep = play(seed, plan, iteration=iteration, split="train",
                          group=f"train-{iteration}-{task}", member=member)
                ret = ep.total_reward
                for step in ep.steps:
                    step.advantage = ret - 0.5
                    step.advantage_parts = {"episode": ret - 0.5, "step": 0.1 * step.index}
                episodes.append(ep)
    evaluated = play(99, ["guess 1", "guess 2", "guess 3", "guess 4"], iteration=2,
                     split="eval", group="eval-2-0", member=0)
    episodes.append(evaluated)
    broken = episodes[0]
    broken.error = "EnvError: RuntimeError: the game engine fell over"
    broken.steps[-1].error = broken.error
    broken.termination = "env_error"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "images").mkdir(exist_ok=True)
    (run_dir / "images" / "step.png").write_bytes(PNG)
    episodes[1].steps[0].info["image"] = "images/step.png"
    with EpisodeStore(run_dir) as store:
        store.add_episodes(episodes)
    (run_dir / "config.yaml").write_text(
        f"env:\n  id: {ENV_ID}\n  kwargs: {{}}\n  eval_kwargs: {{}}\n"
        f"  max_episode_steps: {MAX_STEPS_}\n")
    with MetricsLogger(run_dir) as log:
        for it in (1, 2):
            log.log(it, {"rollout/success_rate": 0.25 * it, "rollout/reward_mean": 0.1 * it,
                         "rollout/episode_length": 3.0, "loss/kl": 0.01,
                         "credit/step_group_size": 2.5})
    return run_dir
