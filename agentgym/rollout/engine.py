"""Batched multi-turn rollouts: B tasks x G group members, one generation per turn.

Every turn the still-running episodes are prompted together in one batched
``policy.generate`` call; their environments then step in parallel. Each step's
exact prompt ids, sampled ids, behaviour logprobs and entropies go into the episode's
token ledger: training later uses exactly these ids.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from agentgym.rollout.envpool import EnvPool
from agentgym.episode import (CONTEXT, ENV_ERROR, FAILURE, MAX_STEPS, SUCCESS, TIMEOUT,
                              Episode, Step)
from agentgym.policy.base import Policy, SamplingParams
from agentgym.prompting import PromptTemplate, Turn, build_messages, next_turn_message, parse_action


@dataclass
class RolloutSettings:
    group_size: int = 4
    history_length: int = 2
    think: bool = True
    # with think off, the reply is pre-filled with "<action>": the model writes only the
    # action and "</action>" (small models follow the format from the first iteration)
    prefill_action: bool = True
    # "window": every prompt is re-rendered with the last `history_length` turns.
    # "conversation": each prompt extends the previous prompt + reply (exact ids) by one
    # user turn, so a whole episode is one sequence (trainer.samples=trajectory)
    context: str = "window"
    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_context: int | None = None   # None: the policy's own limit
    end_on_unparseable: bool = False  # ARPO's format reward: an unparseable reply ends the episode


@dataclass
class _Live:
    """An episode in progress."""

    episode: Episode
    slot: int
    task: str = ""
    observation: str = ""
    info: dict = field(default_factory=dict)
    history: list[Turn] = field(default_factory=list)
    conversation: list[int] = field(default_factory=list)  # last prompt + reply ids


class RolloutEngine:
    def __init__(self, policy: Policy, pool: EnvPool, template: PromptTemplate,
                 settings: RolloutSettings, env_id: str = "", run_id: str = "run"):
        self.policy, self.pool, self.template = policy, pool, template
        self.settings, self.env_id, self.run_id = settings, env_id, run_id
        self._glue_text: list[str] | None = None  # chat-template text around a user turn

    def run(self, seeds: list[int], *, iteration: int = 0, split: str = "train",
            on_turn: Callable[[int, int], None] | None = None) -> list[Episode]:
        """Play ``group_size`` episodes from each seed; returns them in (task, member) order."""
        g = self.settings.group_size
        live = [_Live(Episode(run_id=self.run_id, iteration=iteration, split=split,
                              group_id=f"{split}-{iteration}-{t}",
                              episode_id=f"{self.run_id}-{split}-{iteration}-{t}-{m}",
                              env_id=self.env_id, task_id="", seed=seed), slot=t * g + m)
                for t, seed in enumerate(seeds) for m in range(g)]
        active = self._reset(live)
        turn = 0
        while active:
            if on_turn:
                on_turn(turn, len(active))
            active = self._turn(active)
            turn += 1
        return [x.episode for x in live]

    def _reset(self, live: list[_Live]) -> list[_Live]:
        outcomes = self.pool.reset({x.slot: x.episode.seed for x in live})
        active = []
        for x in live:
            out = outcomes[x.slot]
            if out.error:
                self._finish(x, TIMEOUT if out.timed_out else ENV_ERROR, out.error)
                continue
            x.observation, x.info = out.value
            x.task = str(x.info.get("task") or x.observation)
            x.episode.task_id = str(x.info.get("task_id", ""))
            x.episode.task_type = x.info.get("task_type")
            active.append(x)
        return active

    def _prompt_ids(self, x: _Live, prefix_ids: list[int]) -> list[int]:
        s = self.settings
        admissible = x.info.get("admissible_actions")
        if s.context == "conversation" and x.conversation:
            message = next_turn_message(self.template, len(x.history) + 1, x.observation,
                                        admissible, s.think)
            eos = self.policy.tokenizer.eos_token_id
            closed = x.conversation if x.conversation[-1] == eos else x.conversation + [eos]
            return closed + self._glue(message["content"]) + prefix_ids
        history = 0 if s.context == "conversation" else s.history_length
        messages = build_messages(self.template, x.task, x.history, x.observation, admissible,
                                  history, s.think)
        return self.policy.encode_chat(messages) + prefix_ids

    def _glue(self, content: str) -> list[int]:
        """Ids between an assistant reply's eos and the next reply: the user turn."""
        if self._glue_text is None:
            tok, mark_a, mark_u = self.policy.tokenizer, "\x00A\x00", "\x00U\x00"
            text = tok.apply_chat_template(
                [{"role": "user", "content": "u"}, {"role": "assistant", "content": mark_a},
                 {"role": "user", "content": mark_u}], tokenize=False, add_generation_prompt=True)
            after = text[text.index(mark_a) + len(mark_a):]
            after = after[len(tok.eos_token):] if after.startswith(tok.eos_token) else after
            self._glue_text = after.split(mark_u)
        before, after = self._glue_text
        return self.policy.tokenizer.encode(before + content + after, add_special_tokens=False)

    def _turn(self, active: list[_Live]) -> list[_Live]:
        s = self.settings
        limit = s.max_context or self.policy.max_context
        t0 = time.perf_counter()
        raw = self.template.raw_action   # the whole reply is the action (tool use)
        prefix = "<action>" if (s.prefill_action and not s.think and not raw) else ""
        if self.policy.trainable:
            prefix_ids = self.policy.tokenizer.encode(prefix, add_special_tokens=False) if prefix else []
            prompts = [self._prompt_ids(x, prefix_ids) for x in active]
            fits = [limit is None or len(p) + s.sampling.max_new_tokens <= limit for p in prompts]
            for x, ok in zip(active, fits):
                if not ok:
                    self._finish(x, CONTEXT, None)
            active = [x for x, ok in zip(active, fits) if ok]
            prompts = [p for p, ok in zip(prompts, fits) if ok]
            completions = self.policy.generate(prompts, s.sampling) if prompts else []
        else:
            prefix = ""
            messages = [build_messages(self.template, x.task, x.history, x.observation,
                                       x.info.get("admissible_actions"), s.history_length, s.think)
                        for x in active]
            completions = self.policy.generate_chat(messages, s.sampling)
        generate_s = time.perf_counter() - t0

        parsed = [parse_action(prefix + c.text, raw=raw) for c in completions]
        # an unparseable reply is sent as "" so the environment's guard counts it as an
        # invalid step (the step limit still applies); the env never sees the raw text
        outcomes = self.pool.step({x.slot: p.action or "" for x, p in zip(active, parsed)})

        still = []
        for x, c, p in zip(active, completions, parsed):
            out = outcomes[x.slot]
            step = Step(index=len(x.episode.steps), observation=x.observation,
                        prompt_ids=list(c.prompt_ids), response_ids=list(c.token_ids),
                        logprobs=list(c.logprobs), entropies=list(c.entropies),
                        response_text=c.text, action=p.action, action_valid=False,
                        reward=0.0, anchor=str(x.info.get("anchor", x.observation)),
                        timings={"generate_s": generate_s, "env_s": out.seconds},
                        info={"finish_reason": c.finish_reason}
                        | ({"prefill": prefix} if prefix else {})
                        | ({"parse_problem": p.problem} if p.problem else {}))
            x.episode.steps.append(step)
            x.conversation = step.prompt_ids + step.response_ids
            if out.error:
                step.error = out.error
                self._finish(x, TIMEOUT if out.timed_out else ENV_ERROR, out.error)
                continue
            obs, reward, terminated, truncated, info = out.value
            step.reward = float(reward)
            step.action_valid = bool(info.get("action_valid", False)) and p.action is not None
            x.episode.total_reward += step.reward
            x.history.append(Turn(x.observation, p.action or "(no action)"))
            x.observation, x.info = obs, info
            if p.action is None and s.end_on_unparseable:
                self._finish(x, FAILURE, None)
            elif terminated or truncated:
                won = bool(info.get("won", False))
                reason = SUCCESS if won else (FAILURE if terminated else MAX_STEPS)
                self._finish(x, reason, None)
            else:
                still.append(x)
        return still

    @staticmethod
    def _finish(x: _Live, reason: str, error: str | None) -> None:
        ep = x.episode
        ep.termination = reason
        ep.won = reason == SUCCESS
        ep.error = error
        ep.final_observation = x.observation
