"""Token-level policy losses and the per-token quantities they need (torch).

Shapes: per-token tensors are ``[B, T]`` (batch rows x response tokens); ``mask`` is
``[B, T]``, bool or 0/1 float, true on the response tokens that are trained on.
Values at masked-out positions may be garbage (padding, -inf log-probs): they never
reach the result or its gradient.

Aggregation is left to the caller: losses come back per token, and ``token_mean``
reduces them (sum over all trained tokens / number of trained tokens), so that
policy, KL and entropy terms are aggregated the same way::

    loss_tok, stats = ppo_clip_loss(logp, old_logp, adv, mask)
    loss = token_mean(loss_tok, mask) + kl_coef * token_mean(kl_low_var(logp, ref_logp), mask)
"""

from __future__ import annotations

import torch

__all__ = [
    "masked_mean",
    "token_mean",
    "ppo_clip_loss",
    "kl_low_var",
    "kl_penalty",
    "KL_ESTIMATORS",
    "AGGREGATIONS",
    "aggregate",
    "sequence_weights",
    "sequence_log_ratio",
    "rollout_correction_weights",
    "ROLLOUT_CORRECTIONS",
    "entropy_from_logits",
    "logprobs_from_logits",
]

# exp() of a log-ratio beyond this is clamped (as verl does): exp(20) ~ 4.9e8 is far
# inside every clip range, so the clamp only touches tokens whose gradient is already
# zero (clipped) or vanishing (rho ~ e^-20).
_LOG_RATIO_CLAMP = 20.0


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim=None) -> torch.Tensor:
    """sum(values * mask) / sum(mask), over ``dim`` (all dims when None).

    Safe when the mask sums to 0 (returns 0 there, with a zero gradient) and when
    ``values`` holds NaN/inf at masked-out positions.
    """
    keep = mask if mask.dtype == torch.bool else mask != 0
    weights = mask.to(values.dtype)
    num = torch.where(keep, values, torch.zeros_like(values)) * weights
    num = num.sum() if dim is None else num.sum(dim)
    den = weights.sum() if dim is None else weights.sum(dim)
    # den == 0  =>  num == 0 exactly, so dividing by a tiny positive number gives 0.
    return num / den.clamp_min(torch.finfo(values.dtype).tiny)


def token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-mean aggregation: sum(values * mask) / sum(mask) over the whole batch.

    Every trained token weighs the same, whatever the length of its sequence. 0 when
    no token is trained.
    """
    return masked_mean(values, mask, dim=None)


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    dual_clip: float | None = 3.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO clipped surrogate with asymmetric clip range and dual clip, per token.

        rho = exp(logp - old_logp)
        L   = max(-A * rho, -A * clip(rho, 1 - clip_low, 1 + clip_high))
        L   = min(L, -c * A)      where A < 0   (dual clip, c = dual_clip; None disables)

    Args are ``[B, T]``; ``advantages`` already broadcast to tokens. Returns
    ``(loss_per_token, stats)``: the loss is 0 on masked-out tokens (tokens where
    ``mask`` is 0/False); aggregate it with ``token_mean``. The log-ratio is clamped to
    [-20, 20] before ``exp`` (stats use the clamped value too). ``old_logprobs`` and
    ``advantages`` are treated as constants (detached).

    ``stats`` (0-dim detached tensors, averaged over trained tokens, 0 if none):
      - ``clip_frac``: fraction of tokens where any clipping was active (the
        gradient through rho is zero there) = ``clip_frac_high + clip_frac_low +
        dual_clip_frac``;
      - ``clip_frac_high``: A > 0 and rho > 1 + clip_high;
      - ``clip_frac_low``: A < 0 and rho < 1 - clip_low;
      - ``dual_clip_frac``: A < 0 and rho > c (dual clip active);
      - ``approx_kl``: k3 estimate of KL(pi_old || pi_theta) = mean(rho - 1 - log rho),
        non-negative, low variance (tokens were sampled from pi_old);
      - ``approx_kl_k1``: k1 estimate, mean(old_logp - logp) (verl's ``ppo_kl``);
      - ``ratio_mean``, ``ratio_max``, ``ratio_min``.
    """
    if not (logprobs.shape == old_logprobs.shape == advantages.shape == mask.shape):
        raise ValueError(
            "ppo_clip_loss: logprobs, old_logprobs, advantages and mask must have the same "
            f"shape, got {tuple(logprobs.shape)}, {tuple(old_logprobs.shape)}, "
            f"{tuple(advantages.shape)}, {tuple(mask.shape)}"
        )
    if clip_low < 0 or clip_high < 0:
        raise ValueError(f"clip_low and clip_high must be >= 0, got {clip_low}, {clip_high}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (or None to disable), got {dual_clip}")

    keep = mask.bool()
    zero = torch.zeros((), dtype=logprobs.dtype, device=logprobs.device)
    # Sanitise masked-out positions first, so padding garbage cannot produce NaN in the
    # forward pass or the backward pass (torch.where alone does not protect gradients).
    log_ratio = torch.where(keep, logprobs - old_logprobs.detach(), zero)
    log_ratio = log_ratio.clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    adv = torch.where(keep, advantages.detach().to(logprobs.dtype), zero)

    ratio = torch.exp(log_ratio)
    loss_unclipped = -adv * ratio
    loss_clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(loss_unclipped, loss_clipped)
    if dual_clip is not None:
        loss = torch.where(adv < 0, torch.minimum(loss, -dual_clip * adv), loss)
    loss = torch.where(keep, loss, zero)

    with torch.no_grad():
        r = ratio.detach()
        high = keep & (adv > 0) & (r > 1.0 + clip_high)
        low = keep & (adv < 0) & (r < 1.0 - clip_low)
        dual = keep & (adv < 0) & (r > dual_clip) if dual_clip is not None else torch.zeros_like(keep)
        lr = log_ratio.detach()
        n = keep.sum()
        big = torch.finfo(r.dtype).max
        stats = {
            "clip_frac": token_mean((high | low | dual).to(r.dtype), keep),
            "clip_frac_high": token_mean(high.to(r.dtype), keep),
            "clip_frac_low": token_mean(low.to(r.dtype), keep),
            "dual_clip_frac": token_mean(dual.to(r.dtype), keep),
            "approx_kl": token_mean(r - 1.0 - lr, keep),
            "approx_kl_k1": token_mean(-lr, keep),
            "ratio_mean": token_mean(r, keep),
        }
        if keep.numel() == 0:  # no tokens at all (reductions below need one element)
            stats["ratio_max"] = stats["ratio_min"] = zero.clone()
        else:
            stats["ratio_max"] = torch.where(n > 0, torch.where(keep, r, -big).max(), zero)
            stats["ratio_min"] = torch.where(n > 0, torch.where(keep, r, big).min(), zero)
    return loss, stats


def kl_low_var(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 ("low_var_kl") estimate of KL(pi_theta || pi_ref), as in verl.

        d  = clamp(ref_logp - logp, -20, 20)
        kl = clamp(exp(d) - d - 1, -10, 10)

    Non-negative, 0 where the two log-probs are equal; the clamps (verl's) keep a single
    token with a huge log-ratio from dominating (the lower clamp never binds since
    exp(d) - d - 1 >= 0). Differentiable w.r.t. ``logprobs``; ``ref_logprobs`` is
    treated as a constant. Aggregate with ``token_mean`` and weight by ``kl_coef``.
    """
    d = (ref_logprobs.detach() - logprobs).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return (torch.exp(d) - d - 1.0).clamp(-10.0, 10.0)


KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from tokens sampled by pi_theta.

    With ``d = log pi_ref - log pi_theta`` (clamped to [-20, 20]):
    ``k1 = -d`` (unbiased, can be negative), ``k2 = d^2 / 2``, ``k3 = e^d - 1 - d``
    (``kl_low_var``, clamped to 10 as verl does). ``ref_logprobs`` is a constant.
    """
    if estimator == "k3":
        return kl_low_var(logprobs, ref_logprobs)
    d = (ref_logprobs.detach() - logprobs).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    if estimator == "k1":
        return -d
    if estimator == "k2":
        return 0.5 * d * d
    raise ValueError(f"kl estimator must be one of {', '.join(KL_ESTIMATORS)}, got {estimator!r}")


AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")


def sequence_weights(lengths: torch.Tensor, mode: str = "token_mean",
                     norm_length: float | None = None,
                     copies: torch.Tensor | None = None) -> torch.Tensor:
    """Weight of each token of sequence i, so that the loss is ``sum_i,t w_i * l_i,t``.

        token_mean               w_i = 1 / sum_j |y_j|
        seq_mean_token_mean      w_i = 1 / (n * |y_i|)
        seq_mean_token_sum_norm  w_i = 1 / (n * L)         (Dr.GRPO, L a constant)

    ``lengths`` are the trained tokens per sequence (rows with 0 get weight 0).
    ``copies[i] = k`` counts sequence i as k identical sequences (a tree step merged
    from k leaves), so the loss equals the one over the duplicated batch.
    """
    lengths = lengths.to(torch.float64)
    k = torch.ones_like(lengths) if copies is None else copies.to(torch.float64)
    alive = lengths > 0
    n = (k * alive).sum().clamp_min(1)
    if mode == "token_mean":
        w = torch.full_like(lengths, 1.0) / (k * lengths).sum().clamp_min(1)
    elif mode == "seq_mean_token_mean":
        w = 1.0 / (n * lengths.clamp_min(1))
    elif mode == "seq_mean_token_sum_norm":
        if norm_length is None or norm_length <= 0:
            raise ValueError("seq_mean_token_sum_norm needs a positive norm_length (L_max)")
        w = torch.full_like(lengths, 1.0) / (n * float(norm_length))
    else:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {mode!r}")
    return torch.where(alive, w * k, torch.zeros_like(w))


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str = "token_mean",
              norm_length: float | None = None) -> torch.Tensor:
    """Reduce ``[B, T]`` token values to a scalar by ``mode`` (see ``sequence_weights``)."""
    keep = mask if mask.dtype == torch.bool else mask != 0
    w = sequence_weights(keep.sum(-1), mode, norm_length).to(values.dtype)
    vals = torch.where(keep, values, torch.zeros_like(values))
    return (vals * keep.to(values.dtype) * w[:, None]).sum()


def sequence_log_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor, rows: torch.Tensor,
                       n_rows: int) -> torch.Tensor:
    """GSPO's length-normalised sequence log-ratio, broadcast back to each token.

    Flat tokens with their row index ``rows``: ``log s_i = mean_t (logp - old_logp)`` over
    row i's tokens; returns ``log s_{rows[k]}`` for every token k (differentiable
    through all of its row's tokens), for ``ppo_clip_loss(..., old=0)``.
    """
    diff = logprobs - old_logprobs.detach()
    sums = torch.zeros(n_rows, dtype=diff.dtype, device=diff.device).index_add(0, rows, diff)
    counts = torch.bincount(rows, minlength=n_rows).to(diff.dtype).clamp_min(1)
    return (sums / counts)[rows]


ROLLOUT_CORRECTIONS = ("none", "tis", "mis")


def rollout_correction_weights(old_logprobs: torch.Tensor, behaviour_logprobs: torch.Tensor,
                               mode: str = "none", cap: float = 2.0) -> torch.Tensor:
    """Per-token importance weight for the sampler/trainer mismatch (a constant).

    ``w = pi_old / pi_behaviour``; ``tis``: ``min(w, cap)`` (truncated importance
    sampling); ``mis``: ``w`` where ``w <= cap``, else 0 (the token is masked out);
    ``none``: 1.
    """
    if mode == "none":
        return torch.ones_like(old_logprobs)
    if cap <= 0:
        raise ValueError(f"rollout correction cap must be > 0, got {cap}")
    log_w = (old_logprobs.detach() - behaviour_logprobs.detach()).clamp(-_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    w = torch.exp(log_w)
    if mode == "tis":
        return w.clamp(max=cap)
    if mode == "mis":
        return torch.where(w <= cap, w, torch.zeros_like(w))
    raise ValueError(f"rollout_correction must be one of {', '.join(ROLLOUT_CORRECTIONS)}, got {mode!r}")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else (fp16, bf16, fp32) is computed in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def entropy_from_logits(logits: torch.Tensor, *, chunk_size: int = 1024) -> torch.Tensor:
    """Entropy of softmax(logits) at every position: ``[..., V] -> [...]``.

        H = -sum_v p_v log p_v = lse(z') - sum_v p_v z',   z' = z - max(z),  p = softmax(z)

    Shifting by the max keeps both terms O(log V), so large logits lose no precision.
    Positions are processed ``chunk_size`` at a time: the extra memory is two or three
    ``[chunk_size, V]`` fp32 buffers, never a full ``[B, T, V]`` copy (with autograd
    on, each chunk's softmax is kept for backward, as any entropy gradient needs; for
    logging only, call it under ``torch.no_grad()``).
    Half-precision logits are computed in fp32; the result is fp32 (fp64 for fp64).
    Logits must be finite (mask vocabulary entries with a large negative number).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    out = []
    for start in range(0, flat.shape[0], chunk_size):
        z = flat[start : start + chunk_size].to(_compute_dtype(logits.dtype))
        z = z - z.detach().amax(dim=-1, keepdim=True)  # the shift cancels; no grad needed
        lse = torch.logsumexp(z, dim=-1)
        p = (z - lse.unsqueeze(-1)).exp_()  # in place on a temporary: one buffer
        # (p * z).sum() uses pairwise summation: ~100x more accurate in fp32 than a dot
        # product (einsum/bmm) over a 49k vocabulary. Without autograd, reuse p's buffer.
        pz = p.mul_(z) if not (torch.is_grad_enabled() and z.requires_grad) else p * z
        out.append(lse - pz.sum(dim=-1))
    if not out:
        return flat.new_zeros(logits.shape[:-1], dtype=_compute_dtype(logits.dtype))
    return torch.cat(out).reshape(logits.shape[:-1])


def logprobs_from_logits(
    logits: torch.Tensor, labels: torch.Tensor, *, chunk_size: int = 1024
) -> torch.Tensor:
    """log softmax(logits)[label] at every position: ``[..., V], [...] -> [...]``.

        log p(y) = z'_y - lse(z'),   z' = z - max(z)

    Gathers the label's logit instead of materialising the full log-softmax; processes
    ``chunk_size`` positions at a time (a few ``[chunk_size, V]`` fp32 buffers at most).
    Half-precision logits are computed in fp32; the result is fp32 (fp64 for fp64).
    ``labels`` must be valid token ids everywhere (use the pad id, not -100, on padding,
    and mask those positions later).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels shape {tuple(labels.shape)} must equal logits shape without the vocab "
            f"dim {tuple(logits.shape[:-1])}"
        )
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)
    flat_labels = labels.reshape(-1, 1).long()
    out = []
    for start in range(0, flat.shape[0], chunk_size):
        z = flat[start : start + chunk_size].to(_compute_dtype(logits.dtype))
        z = z - z.detach().amax(dim=-1, keepdim=True)
        picked = z.gather(-1, flat_labels[start : start + chunk_size]).squeeze(-1)
        out.append(picked - torch.logsumexp(z, dim=-1))
    if not out:
        return flat.new_zeros(labels.shape, dtype=_compute_dtype(logits.dtype))
    return torch.cat(out).reshape(labels.shape)
