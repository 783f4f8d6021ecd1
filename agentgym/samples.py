"""Training samples from episodes: exactly the sampled token ids, and a loss mask.

``per_step`` (the default, as in verl-agent): one sample per step, its prompt (with the
history window) followed by the response. ``trajectory``: one sample per episode, for
conversation-style rollouts where each prompt extends the previous prompt + response.

The loss mask is 1 exactly on the tokens the policy sampled (its stop token once) and 0
on the prompt, observations, template scaffolding and padding. It is built from
lengths, never by comparing token ids, so pad == eos cannot break it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from agentgym.episode import Episode
from agentgym.errors import AgentGymError


@dataclass
class Sample:
    input_ids: list[int]
    loss_mask: list[int]            # 1 on sampled tokens
    advantages: list[float]         # per token; 0 where the mask is 0
    behaviour_logprobs: list[float]  # per token, from the rollout; 0 where the mask is 0
    episode_id: str
    step: int                       # -1 for a whole-trajectory sample
    weight: float = 1.0             # k for a step merged from k leaves of a tree


def per_step_samples(episodes: list[Episode]) -> list[Sample]:
    out = []
    for ep in episodes:
        for step in ep.steps:
            if not step.response_ids:
                continue
            n_prompt, n_resp = len(step.prompt_ids), len(step.response_ids)
            adv = 0.0 if step.advantage is None else float(step.advantage)
            out.append(Sample(
                input_ids=list(step.prompt_ids) + list(step.response_ids),
                loss_mask=[0] * n_prompt + [1] * n_resp,
                advantages=[0.0] * n_prompt + [adv] * n_resp,
                behaviour_logprobs=[0.0] * n_prompt + list(step.logprobs),
                episode_id=ep.episode_id, step=step.index))
    return out


def trajectory_samples(episodes: list[Episode]) -> list[Sample]:
    """One sequence per episode; requires every prompt to extend the previous turn."""
    out = []
    for ep in episodes:
        ids: list[int] = []
        mask: list[int] = []
        adv: list[float] = []
        behaviour: list[float] = []
        for step in ep.steps:
            if step.prompt_ids[:len(ids)] != ids:
                raise AgentGymError(
                    "trainer.samples=trajectory needs conversation prompts (each prompt extends "
                    "the previous prompt and response); use trainer.samples=per_step")
            new = step.prompt_ids[len(ids):]
            a = 0.0 if step.advantage is None else float(step.advantage)
            ids += list(new) + list(step.response_ids)
            mask += [0] * len(new) + [1] * len(step.response_ids)
            adv += [0.0] * len(new) + [a] * len(step.response_ids)
            behaviour += [0.0] * len(new) + list(step.logprobs)
        if any(mask):
            out.append(Sample(ids, mask, adv, behaviour, ep.episode_id, -1))
    return out


def merge_shared_steps(episodes: list[Episode], samples: list[Sample]) -> list[Sample]:
    """Tree rollouts, ``rollout.tree.shared_steps=merge``: a step k leaves share becomes
    one sample with the mean of their advantages and weight k, so the loss equals that
    of the k duplicated samples when their advantages agree (PPO's loss is linear in
    the per-token weight)."""
    keys = [ep.node_key(k) for ep in episodes for k, st in enumerate(ep.steps) if st.response_ids]
    merged: dict[str, list[Sample]] = {}
    for key, sample in zip(keys, samples):
        merged.setdefault(key, []).append(sample)
    out = []
    for rows in merged.values():
        first = rows[0]
        mean = sum(r.advantages[-1] for r in rows) / len(rows)
        out.append(Sample(first.input_ids, first.loss_mask,
                          [mean if m else 0.0 for m in first.loss_mask], first.behaviour_logprobs,
                          first.episode_id, first.step, weight=float(len(rows))))
    return out


def build_samples(episodes: list[Episode], mode: str = "per_step",
                  shared_steps: str = "duplicate") -> list[Sample]:
    if mode == "per_step":
        samples = per_step_samples(episodes)
        return merge_shared_steps(episodes, samples) if shared_steps == "merge" else samples
    if mode == "trajectory":
        return trajectory_samples(episodes)
    raise AgentGymError(f"unknown sample mode {mode!r}: use per_step or trajectory")


def collate(samples: list[Sample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors. Masks come from lengths, so pad_id may equal eos."""
    width = max(len(s.input_ids) for s in samples)
    n = len(samples)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    loss_mask = torch.zeros((n, width), dtype=torch.float32)
    advantages = torch.zeros((n, width), dtype=torch.float32)
    behaviour = torch.zeros((n, width), dtype=torch.float32)
    weights = torch.zeros((n, width), dtype=torch.float32)
    for i, s in enumerate(samples):
        k = len(s.input_ids)
        input_ids[i, :k] = torch.tensor(s.input_ids, dtype=torch.long)
        attention[i, :k] = 1
        loss_mask[i, :k] = torch.tensor(s.loss_mask, dtype=torch.float32)
        advantages[i, :k] = torch.tensor(s.advantages, dtype=torch.float32)
        behaviour[i, :k] = torch.tensor(s.behaviour_logprobs, dtype=torch.float32)
        weights[i, :k] = loss_mask[i, :k] * s.weight
    return {"input_ids": input_ids, "attention_mask": attention, "loss_mask": loss_mask,
            "advantages": advantages, "behaviour_logprobs": behaviour, "weights": weights}
