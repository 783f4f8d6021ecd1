"""Reward shaping on per-step rewards (numpy, float64 results).

Steps of a batch are stored flat: ``step_rewards[k]`` is the reward of step k, and
``episode_ids[k]`` labels the trajectory step k belongs to. Each trajectory's steps
are contiguous and in time order (the layout episode records produce); labels may be
ints or strings and must be unique per trajectory.
"""

from __future__ import annotations

import numpy as np

__all__ = ["invalid_action_penalty", "discounted_returns", "overlong_penalty", "format_reward"]


def invalid_action_penalty(step_rewards, action_valid, penalty: float = 0.1) -> np.ndarray:
    """Shaped reward per step: r'_t = r_t - penalty * [action at step t invalid].

    Elementwise (any shape, ``action_valid`` bool of the same shape). The penalty
    belongs to that step only: to keep it from being discounted back into earlier
    steps' returns (the GiGPO convention), pass it to ``discounted_returns`` as
    ``undiscounted=`` instead of adding it to the rewards being discounted::

        shaped = invalid_action_penalty(r, valid)
        G = discounted_returns(r, gamma, ep, undiscounted=shaped - r)

    The trajectory's total reward (for episode-level advantages) is ``shaped`` summed
    over its steps. Returns float64.
    """
    r = np.asarray(step_rewards, dtype=np.float64)
    valid = np.asarray(action_valid)
    if valid.shape != r.shape:
        raise ValueError(
            f"action_valid must have the shape of step_rewards: {valid.shape} vs {r.shape}"
        )
    if valid.dtype != np.bool_:
        if not np.all(np.isin(valid, (0, 1))):
            raise ValueError("action_valid must be boolean (or 0/1)")
        valid = valid.astype(bool)
    return r - penalty * (~valid)


def _episode_runs(episode_ids, n: int) -> np.ndarray:
    """Boolean array: True where step k+1 continues the trajectory of step k (len n-1)."""
    if episode_ids is None:
        return np.ones(max(n - 1, 0), dtype=bool)
    ep = np.asarray(episode_ids)
    if ep.shape != (n,):
        raise ValueError(f"episode_ids must have one label per step: shape {ep.shape}, steps {n}")
    same_next = ep[1:] == ep[:-1]
    # Each label must form a single contiguous run (else two episodes share a label, or
    # one episode's steps are scattered and cannot be discounted in order).
    n_runs = int(n > 0) + int(np.count_nonzero(~same_next))
    if n_runs != np.unique(ep).size:
        raise ValueError(
            "each episode's steps must be contiguous (and in time order) with a label "
            "used by no other episode"
        )
    return same_next


def discounted_returns(step_rewards, gamma: float, episode_ids=None, *, undiscounted=None) -> np.ndarray:
    """Discounted return-to-go of every step, within its own trajectory.

        G_t = sum_{k >= t, same trajectory} gamma^(k - t) * r_k   (+ undiscounted_t)

    Args:
        step_rewards: 1-D, one reward per step, trajectories flat and contiguous.
        gamma: discount in [0, 1].
        episode_ids: 1-D trajectory label per step (None: all steps are one trajectory).
        undiscounted: optional 1-D per-step terms added to that step's return only, not
            propagated to earlier steps (e.g. the invalid-action penalty).

    Returns float64, shape of ``step_rewards``. Vectorised over trajectories: the loop
    runs over steps-from-the-end (the longest trajectory's length), not over steps.
    """
    r = np.asarray(step_rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"step_rewards must be 1-D (flat steps), got shape {r.shape}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    n = r.size
    cont = _episode_runs(episode_ids, n)   # cont[k]: step k+1 is in step k's trajectory

    # Steps-from-the-end of every step: 0 on each trajectory's last step.
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = ~cont
    last_idx = np.flatnonzero(is_last)
    # index of the last step of each step's trajectory = next "last" at or after k
    end_of = last_idx[np.searchsorted(last_idx, np.arange(n))]
    to_end = end_of - np.arange(n)

    # Bucket steps by steps-from-the-end, then sweep backward in time, all
    # trajectories at once: G_t = r_t + gamma * G_{t+1}.
    order = np.argsort(to_end, kind="stable")
    bounds = np.cumsum(np.bincount(to_end, minlength=1))
    G = r.copy()
    for d in range(1, bounds.size):
        k = order[bounds[d - 1] : bounds[d]]
        G[k] += gamma * G[k + 1]

    if undiscounted is not None:
        u = np.asarray(undiscounted, dtype=np.float64)
        if u.shape != r.shape:
            raise ValueError(f"undiscounted must have the shape of step_rewards: {u.shape} vs {r.shape}")
        G = G + u
    return G


def overlong_penalty(response_lengths, max_length: int, buffer: int, penalty: float = 1.0) -> np.ndarray:
    """DAPO's soft overlong punishment per reply, with L = max_length, L_c = buffer:

        R_len = 0                              |y| <= L - L_c
        R_len = penalty * (L - L_c - |y|) / L_c    L - L_c < |y| <= L
        R_len = -penalty                       |y| > L

    ``buffer=0`` disables it (all zeros). Returns float64.
    """
    y = np.asarray(response_lengths, dtype=np.float64)
    if buffer <= 0:
        return np.zeros_like(y)
    if buffer > max_length:
        raise ValueError(f"overlong buffer {buffer} exceeds the max length {max_length}")
    start = max_length - buffer
    soft = (start - y) / buffer
    return penalty * np.where(y <= start, 0.0, np.where(y <= max_length, soft, -1.0))


def format_reward(parsed, weight: float = 0.5) -> np.ndarray:
    """ARPO's format term per step: ``weight * (-1)`` where the reply could not be
    parsed into an action, 0 elsewhere (reward = eval + weight * format score)."""
    ok = np.asarray(parsed, dtype=bool)
    return np.where(ok, 0.0, -float(weight))
