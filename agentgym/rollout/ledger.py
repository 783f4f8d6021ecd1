"""The budget ledger: what a rollout cost, in every unit the papers quote savings in.

Tree rollouts save generated tokens, prefill and environment steps, and pay in forks
(replayed environment steps, or snapshot restores). Counting all of them, per episode
and per rollout, lets strategies be compared at equal budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Budget:
    generated_tokens: int = 0     # sampled response tokens
    prefill_tokens: int = 0       # prompt tokens the backend computed (distinct prompts)
    prefill_reused: int = 0       # prompt tokens of duplicate prompts in a batch (computed once)
    env_steps: int = 0            # environment steps played by the policy
    env_steps_replayed: int = 0   # steps replayed to rebuild a forked state
    tool_calls: int = 0           # tool calls the environment counted (info["tool_calls"])
    forks: int = 0
    fork_snapshots: int = 0       # forks restored from a snapshot (the rest replayed)
    fork_mismatches: int = 0
    generate_s: float = 0.0
    env_s: float = 0.0
    fork_s: float = 0.0
    wall_s: float = 0.0

    def add(self, other: Budget) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def metrics(self, prefix: str = "budget") -> dict[str, float]:
        return {f"{prefix}/{key}": float(value) for key, value in asdict(self).items()}


def prefill_counts(prompts: list[list[int]]) -> tuple[int, int]:
    """(computed, reused) prompt tokens of one batch: identical prompts are computed once."""
    total = sum(len(p) for p in prompts)
    distinct = sum(len(p) for p in {tuple(p): None for p in prompts})
    return distinct, total - distinct
