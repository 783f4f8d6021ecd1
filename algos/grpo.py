"""Episode-level (trajectory-level) advantages: GRPO and RLOO.

A *group* is the set of trajectories started from the same task (same seed). Every
function here maps one return per trajectory, plus a group label per trajectory, to
one advantage per trajectory; the trainer broadcasts that scalar to every response
token of the trajectory's steps.

Conventions (all functions):

* inputs are 1-D, one entry per trajectory, in any order; groups may be interleaved;
* group labels may be ints or strings (anything ``np.unique`` can sort);
* arithmetic is float64 and the result is always a float64 array of the same length;
* a group with a single trajectory gets advantage 0 (nothing to compare against).

Vectorised: one ``np.unique(..., return_inverse=True)`` and a few ``np.bincount``
calls, no Python loop over trajectories or groups.
"""

from __future__ import annotations

import inspect
from typing import Literal

import numpy as np

__all__ = ["grpo_advantages", "rloo_advantages", "episode_advantages", "EPISODE_ADVANTAGES"]


def _check_inputs(returns, group_ids) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate and return (returns as float64, group index per trajectory, n_groups)."""
    r = np.asarray(returns, dtype=np.float64)
    g = np.asarray(group_ids)
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-D (one per trajectory), got shape {r.shape}")
    if g.shape != r.shape:
        raise ValueError(
            f"group_ids must have one label per trajectory: returns has shape {r.shape}, "
            f"group_ids has shape {g.shape}"
        )
    if not np.all(np.isfinite(r)):
        raise ValueError("returns contain NaN or inf")
    if r.size == 0:
        return r, np.zeros(0, dtype=np.intp), 0
    _, inverse = np.unique(g, return_inverse=True)
    inverse = inverse.reshape(-1)  # numpy 2.x keeps the input's shape; make sure it's 1-D
    return r, inverse, int(inverse.max()) + 1


def grpo_advantages(
    returns,
    group_ids,
    *,
    normalize: Literal["std", "none"] = "std",
    eps: float = 1e-6,
    counts=None,
) -> np.ndarray:
    """GRPO advantage per trajectory.

        A_i = (R_i - mean_g) / (std_g + eps)     normalize="std"  (std unbiased, n-1)
        A_i =  R_i - mean_g                      normalize="none"

    where g is trajectory i's group. A group of one gets A = 0.

    ``counts`` (optional, positive ints, one per trajectory) makes trajectory i count
    ``counts[i]`` times in its group's mean and std, i.e. statistics over *step samples*
    as in the GiGPO reference code (pass the trajectory lengths). Default ``None``:
    every trajectory counts once (statistics over trajectories). With counts, the
    unbiased std divides by (sum of counts - 1).

    Returns a float64 array with the shape of ``returns``.
    """
    if normalize not in ("std", "none"):
        raise ValueError(f"normalize must be 'std' or 'none', got {normalize!r}")
    r, inv, n_groups = _check_inputs(returns, group_ids)
    if r.size == 0:
        return r.copy()

    if counts is None:
        w = np.ones_like(r)
    else:
        w = np.asarray(counts)
        if w.shape != r.shape:
            raise ValueError(f"counts must have one entry per trajectory, got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.integer) or np.any(w < 1):
            raise ValueError("counts must be positive integers (step samples per trajectory)")
        w = w.astype(np.float64)

    n = np.bincount(inv, weights=w, minlength=n_groups)          # samples per group
    mean = np.bincount(inv, weights=w * r, minlength=n_groups) / n
    dev = r - mean[inv]                                           # R_i - mean_g
    # A group holding a single trajectory has dev == 0 up to rounding; make it exact.
    n_traj = np.bincount(inv, minlength=n_groups)
    dev[n_traj[inv] == 1] = 0.0
    if normalize == "none":
        return dev

    # Two-pass unbiased variance: sum w (R - mean)^2 / (n - 1); groups with n <= 1 -> 0.
    ss = np.bincount(inv, weights=w * dev * dev, minlength=n_groups)
    var = np.divide(ss, n - 1.0, out=np.zeros(n_groups), where=n > 1)
    std = np.sqrt(var)
    return dev / (std[inv] + eps)


def rloo_advantages(returns, group_ids) -> np.ndarray:
    """RLOO (leave-one-out) advantage per trajectory.

        A_i = R_i - mean_{j in g, j != i} R_j  =  n_g / (n_g - 1) * (R_i - mean_g)

    A group of one gets A = 0. Returns a float64 array with the shape of ``returns``.
    """
    r, inv, n_groups = _check_inputs(returns, group_ids)
    if r.size == 0:
        return r.copy()
    n = np.bincount(inv, minlength=n_groups).astype(np.float64)
    total = np.bincount(inv, weights=r, minlength=n_groups)
    n_i = n[inv]
    # mean of the others = (sum_g - R_i) / (n_g - 1), defined only for n_g > 1
    others_mean = np.divide(total[inv] - r, n_i - 1.0, out=r.copy(), where=n_i > 1)
    return r - others_mean


EPISODE_ADVANTAGES = {"grpo": grpo_advantages, "rloo": rloo_advantages}


def episode_advantages(name: Literal["grpo", "rloo"], returns, group_ids, **opts) -> np.ndarray:
    """Dispatch on the config name ``algorithm.advantage.episode``.

    ``name="grpo"`` accepts ``normalize``, ``eps``, ``counts``; ``name="rloo"`` accepts
    no options (passing e.g. ``normalize`` with ``rloo`` is an error, not ignored).
    """
    try:
        fn = EPISODE_ADVANTAGES[name]
    except KeyError:
        raise ValueError(
            f"unknown episode advantage {name!r}; choose one of {sorted(EPISODE_ADVANTAGES)}"
        ) from None
    allowed = set(inspect.signature(fn).parameters) - {"returns", "group_ids"}
    unknown = set(opts) - allowed
    if unknown:
        raise ValueError(
            f"episode advantage {name!r} does not take option(s) {sorted(unknown)}; "
            f"it takes {sorted(allowed) or 'none'}"
        )
    return fn(returns, group_ids, **opts)
