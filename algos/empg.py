"""EMPG (entropy-modulated policy gradients): rescale advantages by step confidence.

H_t is the mean token entropy of step t's response under the behaviour policy (from the
rollout; no gradient). Over all steps of the batch:

    H~   = (H - min H) / (max H - min H + eps)                      eps = 1e-8
    g_t  = exp(-k H~_t) / mean_batch(exp(-k H~))                    k = 1
    f_t  = exp(-k' H~_{t+1})   (0 on a trajectory's last step)      k' = 1
    A'_t = g_t A_t + zeta f_t                                       zeta = 0.05
    A_t^final = A'_t - mean_batch(A')

Confident steps (low entropy) get their advantage amplified, uncertain ones damped;
the bonus f rewards steps that lead to a confident next step. ``A_t`` is any per-step
advantage (the paper uses the trajectory's; here whatever credit assignment produced).
Flat arrays, one entry per step, trajectories contiguous and in time order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["empg_advantages", "EMPGResult", "step_entropy"]


class EMPGResult(NamedTuple):
    advantage: np.ndarray   # A_final per step
    scale: np.ndarray       # g per step
    bonus: np.ndarray       # zeta * f per step
    shift: float            # mean_batch(A') that was subtracted
    normalized_entropy: np.ndarray  # H~ per step


def step_entropy(token_values: list, *, source: str = "entropy") -> np.ndarray:
    """Mean per-token uncertainty of each step (one list of per-token values per step).

    ``source="entropy"``: the values are token entropies (their mean); ``"logprob"``:
    the values are behaviour log-probs of the sampled tokens, and the step's entropy
    is estimated by the mean surprisal ``-mean(logprob)``. Empty steps give 0.
    """
    if source not in ("entropy", "logprob"):
        raise ValueError(f"entropy source must be 'entropy' or 'logprob', got {source!r}")
    lengths = np.fromiter((len(v) for v in token_values), dtype=np.intp, count=len(token_values))
    flat = np.fromiter((x for v in token_values for x in v), dtype=np.float64, count=int(lengths.sum()))
    owner = np.repeat(np.arange(len(token_values)), lengths)
    sums = np.bincount(owner, weights=flat, minlength=len(token_values))
    mean = np.divide(sums, lengths, out=np.zeros(len(token_values)), where=lengths > 0)
    return -mean if source == "logprob" else mean


def empg_advantages(advantages, step_entropies, episode_ids, *, k: float = 1.0,
                    k_next: float = 1.0, zeta: float = 0.05, eps: float = 1e-8) -> EMPGResult:
    a = np.asarray(advantages, dtype=np.float64)
    h = np.asarray(step_entropies, dtype=np.float64)
    ep = np.asarray(episode_ids)
    if not (a.shape == h.shape == ep.shape) or a.ndim != 1:
        raise ValueError("advantages, step_entropies and episode_ids must be 1-D, one entry per step")
    if a.size == 0:
        return EMPGResult(a.copy(), a.copy(), a.copy(), 0.0, a.copy())
    if not np.all(np.isfinite(h)):
        raise ValueError("step entropies contain NaN or inf")
    h_norm = (h - h.min()) / (h.max() - h.min() + eps)
    conf = np.exp(-k * h_norm)
    g = conf / conf.mean()
    f = np.zeros_like(a)
    same_next = ep[1:] == ep[:-1]                   # step t+1 is in step t's trajectory
    f[:-1] = np.where(same_next, np.exp(-k_next * h_norm[1:]), 0.0)
    modulated = g * a + zeta * f
    shift = float(modulated.mean())
    return EMPGResult(modulated - shift, g, zeta * f, shift, h_norm)
