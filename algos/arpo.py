"""ARPO's experience replay: keep successful trajectories per task and put one into a
group whose rollouts all failed, so GRPO has a non-zero advantage to learn from.

Works on ``agentgym.episode.Episode`` lists from any environment; call it between the
rollout and credit assignment::

    replay = ARPOReplay(capacity=8, success_threshold=0.1)
    episodes, metrics = replay.apply(episodes)   # then assign_advantages(episodes, ...)

Per group (episodes sharing ``group_id``), over its trainable episodes (not ended by an
environment error or timeout):

- the group is *all-failed* when the population std of the episode scores
  (``total_reward``) is below ``fail_std`` and their mean below ``fail_mean``;
- an all-failed group whose task has buffered successes gets one rollout replaced by a
  copy of one of them, drawn uniformly: the first episode that ended by an environment
  error, else the group's first episode;
- afterwards the buffers are updated from the *original* batch: every episode scoring
  above ``success_threshold`` is appended to its task's FIFO buffer (``capacity`` per
  task, oldest dropped).

The task key is ``task_id`` by default (a fixed task instance, as in ARPO); with
``key="task_type"`` one buffer serves every instance of a task family (MiniWoB tasks
whose pages are drawn from fresh seeds).

The replayed copy keeps its stored token ids, behaviour logprobs and rewards, and is
trained on like any rollout. Its importance ratio: the update computes the "old"
log-probabilities with the current policy just before its single optimizer step per
batch (``agentgym.update``), so the ratio of every sample, replayed or not, starts at 1
and no correction towards the (older) policy that generated the replayed tokens is
made, as in ARPO's reference training, where old log-probs are recomputed by the actor
for the whole batch. Its behaviour logprobs only feed the
``actor/behaviour_logprob_diff`` diagnostic, which replayed samples raise.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict, deque

import numpy as np

from agentgym.episode import ENV_ERROR, TIMEOUT, Episode, Step

KEYS = ("task_id", "task_type")


@dataclasses.dataclass
class ARPOReplay:
    capacity: int = 8
    success_threshold: float = 0.1
    fail_std: float = 0.05
    fail_mean: float = 0.2
    key: str = "task_id"
    seed: int = 0
    buffers: dict[str, deque] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.capacity < 1:
            raise ValueError(f"arpo capacity must be >= 1, got {self.capacity}")
        if self.key not in KEYS:
            raise ValueError(f"arpo key must be one of {', '.join(KEYS)}, got {self.key!r}")
        self.rng = np.random.default_rng(self.seed)
        self.buffers = {k: deque(v, maxlen=self.capacity) for k, v in self.buffers.items()}

    def task_key(self, ep: Episode) -> str:
        value = getattr(ep, self.key)
        return str(value if value else ep.task_id)

    def all_failed(self, scores: np.ndarray) -> bool:
        return scores.size > 0 and float(scores.std()) < self.fail_std \
            and float(scores.mean()) < self.fail_mean

    def apply(self, episodes: list[Episode]) -> tuple[list[Episode], dict[str, float]]:
        """The batch with replacements made (a new list; inputs are not modified) and
        ``arpo/...`` metrics. The buffers are updated from the original batch."""
        groups: OrderedDict[str, list[int]] = OrderedDict()
        for i, ep in enumerate(episodes):
            groups.setdefault(ep.group_id, []).append(i)
        out = list(episodes)
        failed = replaced = 0
        for gid, members in groups.items():
            live = [i for i in members if _trainable(episodes[i])]
            scores = np.array([episodes[i].total_reward for i in live], dtype=np.float64)
            if not self.all_failed(scores):
                continue
            failed += 1
            buffer = self.buffers.get(self.task_key(episodes[members[0]]))
            if not buffer:
                continue
            broken = [i for i in members if not _trainable(episodes[i])]
            slot = broken[0] if broken else members[0]
            source = buffer[int(self.rng.integers(len(buffer)))]
            out[slot] = _as_member(source, episodes[slot])
            replaced += 1
        for ep in episodes:
            if _trainable(ep) and ep.total_reward > self.success_threshold:
                key = self.task_key(ep)
                if key not in self.buffers:
                    self.buffers[key] = deque(maxlen=self.capacity)
                self.buffers[key].append(copy.deepcopy(ep))
        sizes = [len(b) for b in self.buffers.values()]
        return out, {"arpo/all_failed_groups": float(failed),
                     "arpo/replaced_groups": float(replaced),
                     "arpo/buffer_tasks": float(len(sizes)),
                     "arpo/buffer_episodes": float(sum(sizes))}

    # ----------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        """JSON-able state: buffers (episodes as dicts) and the sampling RNG."""
        return {"capacity": self.capacity, "key": self.key,
                "rng": self.rng.bit_generator.state,
                "buffers": {k: [dataclasses.asdict(ep) for ep in v]
                            for k, v in self.buffers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.buffers = {k: deque((_episode_from_dict(d) for d in v), maxlen=self.capacity)
                        for k, v in state["buffers"].items()}


def _trainable(ep: Episode) -> bool:
    return ep.termination not in (ENV_ERROR, TIMEOUT) and bool(ep.steps)


def _as_member(source: Episode, slot: Episode) -> Episode:
    """A copy of ``source`` standing in for ``slot``: the slot's identity (run,
    iteration, split, group, episode id), the source's tokens, rewards and outcome."""
    ep = copy.deepcopy(source)
    ep.run_id, ep.iteration, ep.split = slot.run_id, slot.iteration, slot.split
    ep.group_id = slot.group_id
    ep.episode_id = f"{slot.episode_id}-replay"
    ep.info = dict(ep.info, arpo_replay_of=source.episode_id,
                   arpo_replaced=slot.episode_id)
    for step in ep.steps:
        step.advantage, step.advantage_parts = None, {}
    return ep


def _episode_from_dict(d: dict) -> Episode:
    d = dict(d)
    steps = [Step(**s) for s in d.pop("steps")]
    return Episode(**d, steps=steps)
