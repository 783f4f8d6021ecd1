"""What a rollout strategy is: the engine asks it, between turns, what to start or fork.

The engine plays every live episode turn by turn (awaiting generation -> awaiting the
environment -> done). A strategy answers three questions:

- ``initial_chains(task)``: how many episodes to start from a task's seed;
- ``after_generate(generated)``: given the episodes that just sampled a reply (before
  the environment sees it), which to fork *before* that reply (the child samples its own
  reply from the same state next turn: ARPO's branching, TreePO's siblings);
- ``after_step(running)``: given the episodes still running after the environment
  stepped, which to fork *after* that step (the children share it and sample the next
  reply apart: TreePO's segments);
- ``when_idle(episodes)``: when no episode is running, what to fork or start next
  (Tree-GRPO's expansion rounds, ARPO's refill, TreePO's fallback regrowth); nothing
  ends the rollout.

``chain`` never forks: the engine then behaves exactly as the lock-step engine did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentgym.policy.base import Completion
    from agentgym.rollout.engine import LiveEpisode


@dataclass
class Fork:
    """Continue ``parent``'s episode in a new one from the state before its step ``step``."""

    parent: LiveEpisode
    step: int


@dataclass
class NewChain:
    """Start one more episode from task ``task``'s seed."""

    task: int


class Strategy:
    name = "chain"
    forks = False        # whether it ever forks (the engine then keeps env snapshots)

    def __init__(self, group_size: int, seed: int = 0):
        self.group_size = group_size
        self.seed = seed

    def begin(self, tasks: int, iteration: int) -> None:
        """A new rollout of ``tasks`` tasks starts (per-batch state is reset here)."""

    def initial_chains(self, task: int) -> int:
        return self.group_size

    def after_generate(self, generated: list[tuple[LiveEpisode, Completion]]) -> list[Fork]:
        return []

    def after_step(self, running: list[LiveEpisode]) -> list[Fork]:
        return []

    def when_idle(self, episodes: list[list[LiveEpisode]]) -> list[Fork | NewChain]:
        return []

    def metrics(self) -> dict[str, Any]:
        return {}
