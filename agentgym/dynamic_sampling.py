"""DAPO's dynamic sampling: keep only groups whose returns differ.

A group whose trajectories all scored the same has zero advantage everywhere (GRPO
and RLOO), so it adds no policy gradient, only noise from the KL and entropy terms
and a smaller effective batch. ``algorithm.filter.zero_variance_groups`` drops such
groups and plays more tasks until the batch holds ``rollout.tasks_per_iteration``
informative groups, or ``algorithm.filter.max_retries`` extra rollouts were played.
"""

from __future__ import annotations

from agentgym.credit import trainable
from agentgym.episode import Episode


def informative_groups(episodes: list[Episode]) -> list[list[Episode]]:
    """Groups (in order) whose trainable episodes' returns are not all equal.

    Reads ``ep.info["return"]``, which credit assignment sets."""
    groups: dict[str, list[Episode]] = {}
    for ep in trainable(episodes):
        groups.setdefault(ep.group_id, []).append(ep)
    return [g for g in groups.values()
            if len(g) > 1 and len({ep.info["return"] for ep in g}) > 1]


def relabel(episodes: list[Episode], tag: str) -> None:
    """Make a refill rollout's ids distinct from the first rollout's (same iteration)."""
    for ep in episodes:
        ep.group_id = f"{ep.group_id}-{tag}"
        ep.episode_id = f"{ep.episode_id}-{tag}"
