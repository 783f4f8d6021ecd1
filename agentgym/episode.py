"""The episode record: what one trajectory was, token for token.

The rollout engine fills it, credit assignment adds advantages, the trainer builds
training samples from exactly these token ids, and the episode store keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Why an episode ended.
SUCCESS = "success"          # the environment says the task was won
FAILURE = "failure"          # terminated without winning
MAX_STEPS = "max_steps"      # truncated by the step limit
CONTEXT = "context"          # the next prompt would not fit in the model's context
ENV_ERROR = "env_error"      # the environment raised
TIMEOUT = "timeout"          # an environment step took longer than allowed
TERMINATIONS = (SUCCESS, FAILURE, MAX_STEPS, CONTEXT, ENV_ERROR, TIMEOUT)


@dataclass
class Step:
    """One agent turn: the prompt it saw, what it sampled, what the environment did."""

    index: int
    observation: str                 # the observation this step's prompt showed
    prompt_ids: list[int]            # exactly the ids the policy was conditioned on
    response_ids: list[int]          # exactly the ids it sampled (stop token included)
    logprobs: list[float]            # behaviour-policy logprob of each response id
    entropies: list[float]           # entropy of the sampling distribution, per token
    response_text: str
    action: str | None               # parsed action; None when the output had none
    action_valid: bool
    reward: float
    anchor: str                      # the environment's state key before the action
    timings: dict[str, float] = field(default_factory=dict)  # generate_s, env_s
    error: str | None = None         # typed error, e.g. "EnvError: RuntimeError: ..."
    advantage: float | None = None   # the advantage trained on (set by credit assignment)
    advantage_parts: dict[str, float] = field(default_factory=dict)  # e.g. episode, step
    info: dict[str, Any] = field(default_factory=dict)  # small JSON-able extras

    @property
    def entropy_mean(self) -> float:
        return sum(self.entropies) / len(self.entropies) if self.entropies else 0.0


@dataclass
class Episode:
    """One trajectory. Episodes with the same ``group_id`` started from the same task."""

    run_id: str
    iteration: int
    split: str                       # "train" or "eval"
    group_id: str
    episode_id: str
    env_id: str
    task_id: str
    seed: int
    steps: list[Step] = field(default_factory=list)
    won: bool = False
    total_reward: float = 0.0
    termination: str = FAILURE       # one of TERMINATIONS
    error: str | None = None
    task_type: str | None = None
    final_observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    # branching rollouts: a fork continues ``parent_id``'s first ``branch_step`` steps
    # (copied into ``steps``, each marked ``info["shared_from"]`` with the episode that
    # sampled it) and carries its tree's root id in ``tree_id``. Roots and chains: None.
    tree_id: str | None = None
    parent_id: str | None = None
    branch_step: int = 0

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def root_id(self) -> str:
        """The id of the episode this one's tree grew from (its own id for a root)."""
        return self.tree_id or self.episode_id

    def node_key(self, index: int) -> str:
        """The tree node of step ``index``: the same for every leaf sharing that step."""
        step = self.steps[index]
        return f"{step.info.get('shared_from', self.episode_id)}\x00{step.index}"

    @property
    def own_steps(self) -> list[Step]:
        """The steps this episode sampled itself (not inherited from its parent)."""
        return self.steps[self.branch_step:]
