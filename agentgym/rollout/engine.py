"""Batched multi-turn rollouts: B tasks, each played by the episodes a strategy starts.

Every live episode is in one of three states: awaiting generation, awaiting the
environment, done. Each turn, the episodes awaiting generation are prompted together in
one batched ``policy.generate`` call; the strategy may then fork some of them (the
child starts from the state before that reply); the environments step in parallel.
When nothing is running the strategy may fork or start more episodes. Each step's exact
prompt ids, sampled ids, behaviour logprobs and entropies go into the episode's token
ledger: training later uses exactly these ids. With the ``chain`` strategy (G
independent episodes per task) this is the lock-step engine it replaced, id for id.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

from agentgym.episode import (CONTEXT, ENV_ERROR, FAILURE, MAX_STEPS, SUCCESS, TIMEOUT,
                              Episode, Step)
from agentgym.errors import AgentGymError
from agentgym.policy.base import Policy, SamplingParams
from agentgym.prompting import PromptTemplate, Turn, build_messages, next_turn_message, parse_action
from agentgym.rollout.envpool import EnvPool
from agentgym.rollout.fork import SNAPSHOT
from agentgym.rollout.ledger import Budget, prefill_counts
from agentgym.rollout.strategies.base import Fork, NewChain, Strategy

GENERATE, ENV, DONE = "awaiting_generation", "awaiting_env", "done"


class ForkError(AgentGymError):
    """The environment cannot be forked deterministically."""


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
    # read a reply as the admissible action it names ("take the knife" -> "take knife",
    # an unclosed tag, text after the action); off: only the exact tag content counts
    match_actions: bool = True


@dataclass
class LiveEpisode:
    """An episode the engine plays, with what a fork of it needs."""

    episode: Episode
    slot: int
    task_index: int = 0
    state: str = GENERATE
    task: str = ""
    observation: str = ""
    info: dict = field(default_factory=dict)
    history: list[Turn] = field(default_factory=list)
    conversation: list[int] = field(default_factory=list)  # last prompt + reply ids
    # before each step k: (observation, info, history, conversation), for forks at k
    contexts: list[tuple] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)

    def remember_context(self) -> None:
        self.contexts.append((self.observation, self.info, list(self.history), self.conversation))


class RolloutEngine:
    def __init__(self, policy: Policy, pool: EnvPool, template: PromptTemplate,
                 settings: RolloutSettings, env_id: str = "", run_id: str = "run",
                 strategy: Strategy | None = None):
        self.policy, self.pool, self.template = policy, pool, template
        self.settings, self.env_id, self.run_id = settings, env_id, run_id
        self.strategy = strategy or Strategy(settings.group_size)
        self._glue_text: list[str] | None = None  # chat-template text around a user turn
        self._forked_ok = False    # a fork has reproduced its state: the env forks
        self.budget = Budget()     # of the last run()
        if self.strategy.forks and pool.fork_mode() == SNAPSHOT:
            pool.keep_snapshots = True

    def run(self, seeds: list[int], *, iteration: int = 0, split: str = "train",
            on_turn: Callable[[int, int], None] | None = None) -> list[Episode]:
        """Play the strategy's episodes from each seed; returns them task by task, each
        task's episodes in the order they started (chain: (task, member) order)."""
        t0 = time.perf_counter()
        self._iteration, self._split, self._seeds = iteration, split, seeds
        self._by_task: list[list[LiveEpisode]] = [[] for _ in seeds]
        self._next_slot = 0
        self.budget = Budget()
        self.strategy.begin(len(seeds), iteration)
        live = [self._new_live(t) for t in range(len(seeds))
                for _ in range(self.strategy.initial_chains(t))]
        active = self._reset(live)
        turn = 0
        while True:
            if not active:
                more = self.strategy.when_idle(self._by_task)
                if not more:
                    break
                active = self._spawn(more)
                continue
            if on_turn:
                on_turn(turn, len(active))
            active = self._turn(active)
            turn += 1
        for lives in self._by_task:
            for x in lives:
                x.episode.info["budget"] = dataclasses.asdict(x.budget)
                self.budget.add(x.budget)
        self.budget.wall_s = time.perf_counter() - t0
        return [x.episode for lives in self._by_task for x in lives]

    def _new_live(self, t: int, parent: LiveEpisode | None = None, step: int = 0) -> LiveEpisode:
        siblings = self._by_task[t]
        it, split = self._iteration, self._split
        episode = Episode(run_id=self.run_id, iteration=it, split=split,
                          group_id=f"{split}-{it}-{t}",
                          episode_id=f"{self.run_id}-{split}-{it}-{t}-{len(siblings)}",
                          env_id=self.env_id, task_id="", seed=self._seeds[t])
        if parent is not None:
            source = parent.episode
            episode.tree_id = source.root_id
            episode.parent_id, episode.branch_step = source.episode_id, step
            episode.task_id, episode.task_type = source.task_id, source.task_type
            episode.steps = [_shared_copy(s, source) for s in source.steps[:step]]
            episode.total_reward = sum(s.reward for s in episode.steps)
        x = LiveEpisode(episode, slot=self._next_slot, task_index=t)
        self._next_slot += 1
        siblings.append(x)
        return x

    def _spawn(self, decisions: list[Fork | NewChain]) -> list[LiveEpisode]:
        chains = [self._new_live(d.task) for d in decisions if isinstance(d, NewChain)]
        forks = [d for d in decisions if isinstance(d, Fork)]
        return self._reset(chains) + self._fork(forks)

    def _fork(self, forks: list[Fork]) -> list[LiveEpisode]:
        """Children of ``forks``, each in its own slot with its parent's state at the fork."""
        if not forks:
            return []
        children = [(self._new_live(f.parent.task_index, f.parent, f.step), f) for f in forks]
        t0 = time.perf_counter()
        outcomes = self.pool.fork({c.slot: (f.parent.slot, f.step) for c, f in children},
                                  env_id=self.env_id)
        seconds = time.perf_counter() - t0
        alive = []
        for child, f in children:
            out = outcomes[child.slot]
            child.budget.forks += 1
            child.budget.fork_s += seconds / len(children)
            child.task = f.parent.task
            child.contexts = f.parent.contexts[:f.step + 1]
            child.observation, child.info, history, child.conversation = f.parent.contexts[f.step]
            child.history = list(history)
            if out.error:
                if out.fork_mismatch:
                    child.budget.fork_mismatches += 1
                    if not self._forked_ok:
                        raise ForkError(
                            f"{self.env_id or 'the environment'} cannot be forked "
                            f"deterministically ({out.error.removeprefix('ForkMismatch: ')}); "
                            f"use rollout.strategy=chain, or make its steps depend only on "
                            f"the seed and the actions")
                self._finish(child, TIMEOUT if out.timed_out else ENV_ERROR, out.error)
                continue
            self._forked_ok = self._forked_ok or f.step > 0   # a fork at the root proves nothing
            if self.pool.traces[child.slot].snapshots[-1] is not None:
                child.budget.fork_snapshots += 1
            else:
                child.budget.env_steps_replayed += f.step
            alive.append(child)
        return alive

    def _reset(self, live: list[LiveEpisode]) -> list[LiveEpisode]:
        if not live:
            return []
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
            x.remember_context()
            active.append(x)
        return active

    def _prompt_ids(self, x: LiveEpisode, prefix_ids: list[int]) -> list[int]:
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

    def _turn(self, active: list[LiveEpisode]) -> list[LiveEpisode]:
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
            computed, reused = prefill_counts(prompts)
            for x in active:   # the batch's prefill, shared out over its episodes
                x.budget.prefill_tokens += computed / len(active)
                x.budget.prefill_reused += reused / len(active)
        else:
            prefix = ""
            messages = [build_messages(self.template, x.task, x.history, x.observation,
                                       x.info.get("admissible_actions"), s.history_length, s.think)
                        for x in active]
            completions = self.policy.generate_chat(messages, s.sampling)
        generate_s = time.perf_counter() - t0
        for x, c in zip(active, completions):
            x.state = ENV
            x.budget.generated_tokens += len(c.token_ids)
            x.budget.generate_s += generate_s / len(active)
        children = self._fork(self.strategy.after_generate(list(zip(active, completions))))

        parsed = [parse_action(prefix + c.text, raw=raw,
                               admissible=x.info.get("admissible_actions") if s.match_actions else None)
                  for x, c in zip(active, completions)]
        # an unparseable reply is sent as "" so the environment's guard counts it as an
        # invalid step (the step limit still applies); the env never sees the raw text
        outcomes = self.pool.step({x.slot: p.action or "" for x, p in zip(active, parsed)})

        still = []
        for x, c, p in zip(active, completions, parsed):
            out = outcomes[x.slot]
            x.budget.env_steps += 1
            x.budget.env_s += out.seconds
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
            x.budget.tool_calls += _tool_calls(x.info, info)
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
                x.state = GENERATE
                x.remember_context()
                still.append(x)
        children += self._fork(self.strategy.after_step(still))
        return still + children

    @staticmethod
    def _finish(x: LiveEpisode, reason: str, error: str | None) -> None:
        x.state = DONE
        ep = x.episode
        ep.termination = reason
        ep.won = reason == SUCCESS
        ep.error = error
        ep.final_observation = x.observation


def _shared_copy(step: Step, source: Episode) -> Step:
    """A fork's copy of a step it shares with its parent (advantages are per leaf)."""
    origin = step.info.get("shared_from", source.episode_id)
    return dataclasses.replace(step, advantage=None, advantage_parts={},
                               info=dict(step.info, shared_from=origin))


def _tool_calls(before: dict, after: dict) -> int:
    """Tool calls one step made, from the environment's running ``tool_calls`` count."""
    if "tool_calls" not in after:
        return 0
    return max(0, int(after["tool_calls"]) - int(before.get("tool_calls", 0)))
