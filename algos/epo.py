"""EPO (entropy-regularized policy optimization): entropy term, smoothing, phase weight.

Per token t of the batch, H_t is the entropy of the current policy (differentiable).

    L_H      = token entropy averaged per turn, then per trajectory, then over the batch
    H_W      = mean(H_0 .. H_{k-1})       cumulative history of L_H at past RL steps
                                          (no smoothing at k = 0: empty history)
    P_t      = [kappa_l H_W - H_t]_+ + [H_t - kappa_r H_W]_+     kappa_l = 0, kappa_r = 2
    L_smooth = alpha * (P averaged like L_H)                     alpha = 0.1 (ALFWorld)
    beta_k   = 1 + exp(-gamma k / k_mid),  k_mid = floor(K / 2)  gamma = 3, K = iterations
    L        = L_policy - lambda (L_H - beta_k L_smooth)         lambda = 0.001

"Averaged per turn, then per trajectory, then over the batch" is a weighted token sum
with weight 1 / (tokens in the turn * turns in the trajectory * trajectories): see
:func:`turn_token_weights`. The weights make the terms linear in tokens, so gradient
accumulation over micro-batches gives the same gradient as one batch.

The paper's form (default) differentiates through the penalty. The public code's
variant computes the penalty without gradient (``penalty_grad=False``); its other
differences (per-turn-index history, another schedule) are not reproduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["phase_weight", "smoothing_penalty", "turn_token_weights", "epo_terms",
           "epo_loss", "EntropyHistory"]


def phase_weight(k: int, total_iterations: int, gamma: float = 3.0) -> float:
    """beta_k = 1 + exp(-gamma k / k_mid), k_mid = floor(K / 2) (at least 1); k is 0-based."""
    if k < 0:
        raise ValueError(f"RL step k must be >= 0, got {k}")
    k_mid = max(1, total_iterations // 2)
    return 1.0 + math.exp(-gamma * k / k_mid)


def smoothing_penalty(entropy: torch.Tensor, reference: float, *, kappa_low: float = 0.0,
                      kappa_high: float = 2.0) -> torch.Tensor:
    """Per-token P = [kappa_l H_W - H]_+ + [H - kappa_r H_W]_+ (0 inside the band)."""
    return torch.relu(kappa_low * reference - entropy) + torch.relu(entropy - kappa_high * reference)


def turn_token_weights(turn_lengths, turn_trajectory) -> np.ndarray:
    """Weight of each token of each turn, so that a weighted token sum is the mean per
    turn, then per trajectory, then over the batch.

    ``turn_lengths[j]``: trained tokens of turn j; ``turn_trajectory[j]``: its
    trajectory label. Returns one weight per turn (for each of its tokens):
    1 / (len_j * turns of its trajectory * trajectories). Turns with no tokens get 0
    and do not count as turns. The weights of all tokens sum to 1 (0 if none).
    """
    n = np.asarray(turn_lengths, dtype=np.float64)
    traj = np.asarray(turn_trajectory)
    if n.shape != traj.shape or n.ndim != 1:
        raise ValueError("turn_lengths and turn_trajectory must be 1-D, one entry per turn")
    keep = n > 0
    if not keep.any():
        return np.zeros_like(n)
    _, t = np.unique(traj[keep], return_inverse=True)
    t = t.reshape(-1)
    turns = np.bincount(t).astype(np.float64)
    w = np.zeros_like(n)
    w[keep] = 1.0 / (n[keep] * turns[t] * turns.size)
    return w


def epo_terms(entropy: torch.Tensor, weights: torch.Tensor, reference: float | None, *,
              alpha: float = 0.1, kappa_low: float = 0.0, kappa_high: float = 2.0,
              penalty_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_H, L_smooth) as weighted token sums (weights from :func:`turn_token_weights`).

    ``reference`` is H_W, or None at the first RL step (then L_smooth = 0).
    """
    if entropy.shape != weights.shape:
        raise ValueError(f"entropy and weights differ in shape: {tuple(entropy.shape)} vs "
                         f"{tuple(weights.shape)}")
    w = weights.to(entropy.dtype)
    l_h = (w * entropy).sum()
    if reference is None:
        return l_h, torch.zeros((), dtype=entropy.dtype, device=entropy.device)
    h = entropy if penalty_grad else entropy.detach()
    p = smoothing_penalty(h, reference, kappa_low=kappa_low, kappa_high=kappa_high)
    return l_h, alpha * (w * p).sum()


def epo_loss(l_h: torch.Tensor, l_smooth: torch.Tensor, beta: float, coef: float = 0.001) -> torch.Tensor:
    """The term added to the policy loss: -lambda (L_H - beta_k L_smooth)."""
    return -coef * (l_h - beta * l_smooth)


@dataclass
class EntropyHistory:
    """H_0, H_1, ...: the batch entropy L_H of every past RL step (cumulative window)."""

    values: list[float] = field(default_factory=list)

    def reference(self) -> float | None:
        """H_W = mean of all past values; None before the first step (no smoothing)."""
        return float(np.mean(self.values)) if self.values else None

    def append(self, value: float) -> None:
        self.values.append(float(value))

    def state_dict(self) -> dict:
        return {"values": list(self.values)}

    def load_state_dict(self, state: dict) -> None:
        self.values = [float(v) for v in state.get("values", [])]
