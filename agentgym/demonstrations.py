"""Demonstrations for ``agentgym sft``: episodes whose replies are worth imitating.

Two sources, both giving ordinary :class:`~agentgym.episode.Episode` records (the same
token ledger RL trains on), kept in the SFT run's own store under the split ``sft``:

- the environment's scripted expert (``walkthrough()``), played through the RL rollout
  engine itself: :class:`ExpertPolicy` stands in for the model and answers each prompt
  with the expert's next command, written as the policy's reply would be. The engine
  builds every prompt (template, history window, ``<action>`` prefill), parses the
  reply and steps the environment exactly as in an RL rollout, so the prompt ids are
  the ones the policy will see.
- the stored episodes of an earlier run (``sft.from_store``), with their prompt and
  response ids exactly as sampled.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np

from agentgym.config import Config
from agentgym.episode import Episode
from agentgym.errors import AgentGymError
from agentgym.policy.base import FINISH_STOP, Completion, Policy, SamplingParams
from agentgym.prompting import template_for
from agentgym.registry import resolve_id
from agentgym.store import EpisodeStore
from agentgym.trainer import env_factory, make_engine

SPLIT = "sft"
ACTION_OPEN, ACTION_CLOSE = "<action>", "</action>"


def expert_reply(action: str, think: bool, raw: bool) -> str:
    """The whole reply that plays ``action`` in the format the prompt asks for. The
    expert has no reasoning to show, so a thinking reply has an empty ``<think>``."""
    if raw:
        return action
    reply = f"{ACTION_OPEN}{action}{ACTION_CLOSE}"
    return f"<think></think>{reply}" if think else reply


class ExpertPolicy(Policy):
    """Replies with the next command of ``plan`` (set per episode), as token ids in the
    policy's tokenizer; an empty reply once the plan is used up.

    The reply continues whatever the prompt already opened (the ``<action>`` prefill),
    and ends as a sampled reply would: at a stop string when it ends with one, else
    with the eos token. Log-probs and entropies are 0: no model sampled these ids.
    """

    trainable = True

    def __init__(self, policy: Policy, *, think: bool, raw: bool, stop: tuple[str, ...]):
        self.tokenizer = policy.tokenizer
        self.max_context = policy.max_context
        self.name = "expert"
        self._policy, self._think, self._raw, self._stop = policy, think, raw, stop
        self._opened_ids = self._encode(ACTION_OPEN)
        self.plan: list[str] = []

    def encode_chat(self, messages: list[dict]) -> list[int]:
        return self._policy.encode_chat(messages)

    def generate(self, prompts: list[list[int]], sampling: SamplingParams) -> list[Completion]:
        return [self._complete(list(prompt)) for prompt in prompts]

    def _complete(self, prompt: list[int]) -> Completion:
        ids = self._reply_ids(prompt, self.plan.pop(0)) if self.plan else []
        return Completion(prompt_ids=prompt, token_ids=ids, logprobs=[0.0] * len(ids),
                          entropies=[0.0] * len(ids),
                          text=self.tokenizer.decode(ids, skip_special_tokens=True),
                          finish_reason=FINISH_STOP)

    def _reply_ids(self, prompt: list[int], action: str) -> list[int]:
        text = expert_reply(action, self._think, self._raw)
        if text.startswith(ACTION_OPEN) and prompt[-len(self._opened_ids):] == self._opened_ids:
            text = text[len(ACTION_OPEN):]      # the prompt ends with the prefilled opener
        ids = self._encode(text)
        if not text.endswith(self._stop):       # generation would only stop at eos
            ids.append(int(self.tokenizer.eos_token_id))
        return ids

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)


def expert_seeds(cfg: Config) -> list[int]:
    """``sft.tasks`` seeds of the train split, drawn as the trainer draws its task seeds."""
    rng = np.random.default_rng(cfg.sft.seed)
    return [int(s) for s in rng.integers(0, 2**31 - 1, size=cfg.sft.tasks)]


def play_expert(cfg: Config, policy: Policy, run_id: str, on_episode=None) -> list[Episode]:
    """The expert's episodes on ``expert_seeds(cfg)``, won or not, one task at a time
    (the expert knows the plan of one game at a time). ``on_episode(k, total)`` reports
    progress."""
    template = template_for(resolve_id(cfg.env.id))
    expert = ExpertPolicy(policy, think=cfg.rollout.think, raw=template.raw_action,
                          stop=tuple(template.stop))
    engine = make_engine(_one_chain_per_task(cfg), expert, "train", run_id)
    # a plan that runs out answers with an empty reply: end that episode there and then
    engine.settings.end_on_unparseable = True
    planner = env_factory(cfg, "train")()
    seeds = expert_seeds(cfg)
    episodes = []
    try:
        for k, seed in enumerate(seeds):
            expert.plan = walkthrough(planner, seed, cfg.env.id)
            [episode] = engine.run([seed], iteration=0, split=SPLIT)
            episodes.append(_labelled(episode, run_id, k))
            if on_episode is not None:
                on_episode(k + 1, len(seeds))
    finally:
        planner.close()
        engine.pool.close()
    return episodes


def _one_chain_per_task(cfg: Config) -> Config:
    demo = copy.deepcopy(cfg)
    demo.rollout.group_size, demo.rollout.strategy = 1, "chain"
    return demo


def walkthrough(env, seed: int, env_id: str) -> list[str]:
    """The commands that win the task of ``seed``, from the environment's expert."""
    env.reset(seed=seed)
    plan = getattr(env.unwrapped, "walkthrough", None)
    if not callable(plan):
        raise AgentGymError(f"{env_id} has no scripted expert (walkthrough()); give "
                            "demonstrations from a run's store: agentgym sft CONFIG "
                            "--from-store RUN_DIR --won")
    return list(plan() or [])


def _labelled(episode: Episode, run_id: str, k: int) -> Episode:
    episode.group_id, episode.episode_id = f"{SPLIT}-{k}", f"{run_id}-{SPLIT}-{k}"
    episode.info["demonstration"] = "expert"
    return episode


def stored_episodes(run_dir: str | Path, won_only: bool) -> list[Episode]:
    """The episodes of another run's store that hold sampled tokens, as demonstrations:
    training and earlier SFT episodes (never the eval split: those are the held-out
    tasks), won ones only with ``won_only``. Tree forks come back as whole chains."""
    source = Path(run_dir)
    if not (source / "episodes.db").is_file():
        raise AgentGymError(f"sft.from_store: {source} has no episodes.db; give a run "
                            "directory of `agentgym train` or `agentgym sft`")
    with EpisodeStore(source, readonly=True) as store:
        store.quick_check()
        chosen = [s.episode_id for s in store.query(won=True if won_only else None, limit=None)
                  if s.split != "eval"]
        episodes = [store.get_episode(episode_id) for episode_id in chosen]
    return [_as_demonstration(ep, source) for ep in episodes
            if any(step.response_ids for step in ep.steps)]


def _as_demonstration(ep: Episode, source: Path) -> Episode:
    """A copy for the SFT run's store: split ``sft``, steps it shared with a tree parent
    stored as its own (the parent is not copied)."""
    steps = [dataclasses.replace(s, info={k: v for k, v in s.info.items() if k != "shared_from"})
             for s in ep.steps]
    return dataclasses.replace(ep, split=SPLIT, iteration=0, steps=steps, tree_id=None,
                               parent_id=None, branch_step=0,
                               info=dict(ep.info, demonstration=f"{source}:{ep.episode_id}"))


def recorded(store: EpisodeStore, won_only: bool) -> list[Episode]:
    """The demonstrations a run recorded, in the order they were written."""
    summaries = store.query(split=SPLIT, won=True if won_only else None, limit=None,
                            order="episode")
    return [store.get_episode(s.episode_id) for s in summaries]
