"""The batched rollout engine against the naive loop, on the same TextWorld tasks.

Naive: one environment at a time, one HF ``model.generate`` call (batch 1) per turn.
Batched: agentgym's engine, one generation per turn over every running episode and
environment steps in parallel. Same model, tasks, seeds, prompts, sampling settings
and turn limit; both report generated tokens per second, measured in one run.

    python tools/bench_rollout.py [--envs 16] [--max-new-tokens 64] [--steps 3] [--no-think]

Last line: ``bench_rollout: ratio=<batched tokens/s / naive tokens/s>`` (goal >= 3).
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

import agentgym
from agentgym.rollout.envpool import EnvPool
from agentgym.policy import make_policy
from agentgym.policy.base import SamplingParams
from agentgym.prompting import Turn, build_messages, parse_action, template_for
from agentgym.rollout import RolloutEngine, RolloutSettings

ENV_ID = "agentgym/TextWorld-v0"
GAME = {"family": "custom", "world_size": 2, "nb_objects": 4, "quest_length": 2, "num_games": 8}


def naive_rollout(policy, seeds: list[int], args) -> int:
    """The loop people write first: one env, one generate call per turn."""
    template = template_for(ENV_ID)
    prefix = policy.tokenizer.encode("<action>", add_special_tokens=False)
    model, tok = policy.model, policy.tokenizer
    generated = 0
    env = agentgym.make(ENV_ID, max_episode_steps=args.steps, **GAME)
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        task, history = info.get("task") or obs, []
        while True:
            messages = build_messages(template, task, history, obs, info.get("admissible_actions"),
                                      history_length=2, think=args.think)
            ids = torch.tensor([policy.encode_chat(messages) + (prefix if not args.think else [])])
            with torch.inference_mode():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                     temperature=1.0, max_new_tokens=args.max_new_tokens,
                                     stop_strings=["</action>"], tokenizer=tok,
                                     pad_token_id=tok.pad_token_id)
            new = out[0, ids.shape[1]:].tolist()
            generated += len(new)
            text = tok.decode(new, skip_special_tokens=True)
            action = parse_action(text if args.think else "<action>" + text).action
            obs2, _, terminated, truncated, info = env.step(action or "")
            history.append(Turn(obs, action or "(no action)"))
            obs = obs2
            if terminated or truncated:
                break
    env.close()
    return generated


def batched_rollout(policy, seeds: list[int], args) -> int:
    pool = EnvPool(lambda: agentgym.make(ENV_ID, max_episode_steps=args.steps, **GAME), workers=4)
    settings = RolloutSettings(group_size=1, history_length=2, think=args.think, sampling=SamplingParams(
        max_new_tokens=args.max_new_tokens, temperature=1.0, stop_strings=["</action>"]))
    engine = RolloutEngine(policy, pool, template_for(ENV_ID), settings, env_id=ENV_ID)
    episodes = engine.run(seeds)
    pool.close()
    return sum(len(s.response_ids) for ep in episodes for s in ep.steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--no-think", dest="think", action="store_false",
                    help="short replies (<action> pre-filled) instead of <think> first")
    ap.add_argument("--steps", type=int, default=3, help="turn limit per episode")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    policy = make_policy(args.model, seed=0)
    seeds = list(range(args.envs))
    # generate the games and warm both paths up before timing anything
    batched_rollout(policy, seeds[:2], argparse.Namespace(**{**vars(args), "steps": 1}))
    naive_rollout(policy, seeds[:1], argparse.Namespace(**{**vars(args), "steps": 1}))
    for s in seeds:
        env = agentgym.make(ENV_ID, **GAME)
        env.reset(seed=s)
        env.close()

    torch.manual_seed(0)
    t0 = time.perf_counter()
    naive_tokens = naive_rollout(policy, seeds, args)
    naive_s = time.perf_counter() - t0
    torch.manual_seed(0)
    t0 = time.perf_counter()
    batched_tokens = batched_rollout(policy, seeds, args)
    batched_s = time.perf_counter() - t0

    naive_rate, batched_rate = naive_tokens / naive_s, batched_tokens / batched_s
    print(f"{args.envs} TextWorld episodes (≤ {args.steps} turns, ≤ {args.max_new_tokens} new tokens/turn), "
          f"model {args.model}")
    print(f"naive loop : {naive_tokens:5d} tokens in {naive_s:6.1f} s = {naive_rate:6.1f} tokens/s")
    print(f"batched    : {batched_tokens:5d} tokens in {batched_s:6.1f} s = {batched_rate:6.1f} tokens/s")
    print(f"bench_rollout: ratio={batched_rate / naive_rate:.2f}")


if __name__ == "__main__":
    main()
