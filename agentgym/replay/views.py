"""Shared views of stored episodes: anchor groups and plain-JSON forms."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from agentgym.episode import Episode
from agentgym.store import EpisodeStore, EpisodeSummary, StepSummary


def anchor_groups(store: EpisodeStore, episode: Episode) -> dict[int, list[StepSummary]]:
    """For each step of ``episode``: every step of its group (itself included) that started
    from the same anchor state, in episode then step order."""
    by_anchor: dict[str, list[StepSummary]] = defaultdict(list)
    for step in store.group_steps(episode.group_id):
        by_anchor[step.anchor].append(step)
    return {s.index: by_anchor.get(s.anchor, []) for s in episode.steps}


def summary_dict(summary: EpisodeSummary) -> dict[str, Any]:
    return dataclasses.asdict(summary)


def episode_dict(episode: Episode, *, tokens: bool = True) -> dict[str, Any]:
    """The episode as plain JSON-able data; ``tokens=False`` drops the token arrays."""
    out = dataclasses.asdict(episode)
    out["length"] = episode.length
    for step, original in zip(out["steps"], episode.steps):
        step["entropy_mean"] = original.entropy_mean
        if not tokens:
            for key in ("prompt_ids", "response_ids", "logprobs", "entropies"):
                del step[key]
    return out
