"""One iteration's policy update: PPO over the batch, in mini-batches and epochs.

    pi_old  <- log-probs of the sampled tokens under the policy before any step
               (no gradient, once per iteration; with a single optimizer step per
               iteration they equal the first forward's, detached, so it is skipped)
    for epoch in 1..trainer.ppo_epochs:
        for each mini-batch (trainer.mini_batch_size samples, shuffled per epoch):
            accumulate gradients over micro-batches (trainer.micro_batch samples)
            clip the gradient norm, set the lr (lr_schedule.py), one optimizer step

The clip and the dual clip therefore bind from the second optimizer step on. Each
mini-batch's loss is aggregated over its own tokens (``loss.aggregation``, see
algos/ppo.py ``sequence_weights``), so gradient accumulation over micro-batches gives
the gradient of the whole mini-batch. Logits are computed only at the positions that
predict a trained token, and the lm head runs in fp32 even under bf16 autocast
(log-prob ratios need the precision; it is a small part of the work).

Per-token terms, all aggregated with the same weights:
    policy   PPO clip (``ratio: token``) or GSPO (``ratio: sequence``), times the
             rollout correction min(w, C) / w [w <= C] with w = pi_old / pi_behaviour
    entropy  - entropy_coef * H
    KL       + kl_coef * k{1,2,3}(pi_theta, pi_ref)
    EPO      ``loss.entropy: epo`` (algos/epo.py), history in ``self.entropy_history``
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from agentgym.algos.epo import EntropyHistory, epo_loss, epo_terms, phase_weight, turn_token_weights
from agentgym.algos.ppo import (entropy_from_logits, kl_penalty, logprobs_from_logits, ppo_clip_loss,
                                rollout_correction_weights, sequence_log_ratio, sequence_weights)
from agentgym.attention import grouped_attention
from agentgym.config import LossConfig
from agentgym.prefix_sharing import Unit, plan_units, shared_prefix_hidden, suffix
from agentgym.samples import Sample, collate


def response_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    predict: torch.Tensor, prefix_ids: torch.Tensor | None = None,
                    head_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Logits at the positions where ``predict`` is True (position t predicts token t+1).

    ``predict`` is ``[B, T-1]``; returns ``[N, V]`` fp32 for its N true entries, row-major.
    With ``prefix_ids`` every row continues that shared prefix (prefix_sharing.py).
    The lm head runs in fp32 outside any autocast region, whatever the weights' dtype
    (a bf16 frozen head is upcast, or ``head_weight`` is its fp32 copy).
    """
    decoder = model.get_decoder()
    if prefix_ids is None:
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    else:
        hidden = shared_prefix_hidden(decoder, model.config, prefix_ids, input_ids, attention_mask)
    head = model.get_output_embeddings()
    weight = head.weight.float() if head_weight is None else head_weight
    bias = None if head.bias is None else head.bias.float()
    with torch.autocast(hidden.device.type, enabled=False):
        return torch.nn.functional.linear(hidden[:, :-1][predict].float(), weight, bias)


def epo_sample_weights(samples: list[Sample]) -> list[np.ndarray]:
    """Per-token EPO weights of each sample (0 off the loss mask): a turn is a run of
    trained tokens, its trajectory the sample's episode."""
    runs, lengths, owners = [], [], []
    for i, s in enumerate(samples):
        mask = np.asarray(s.loss_mask, dtype=np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], mask, [0]))))
        for start, stop in zip(edges[::2], edges[1::2]):
            runs.append((i, start, stop))
            lengths.append(stop - start)
            owners.append(s.episode_id)
    w = turn_token_weights(lengths, owners) if runs else np.zeros(0)
    out = [np.zeros(len(s.input_ids)) for s in samples]
    for (i, start, stop), wj in zip(runs, w):
        out[i][start:stop] = wj
    return out


def _per_token(unit: Unit, values: list[np.ndarray] | list[float],
               predict: torch.Tensor) -> torch.Tensor:
    """Flat per-trained-token tensor (row-major, like ``predict``) from per-sample values:
    a scalar per sample, or an array over the sample's tokens (minus the shared prefix)."""
    out = torch.zeros(predict.shape, dtype=torch.float64)
    for r, i in enumerate(unit.rows):
        v = values[i]
        if np.ndim(v) == 0:
            out[r] = float(v)
        else:
            tail = np.asarray(v[unit.prefix + 1:], dtype=np.float64)
            out[r, :tail.size] = torch.from_numpy(tail)
    return out[predict]


class PolicyUpdater:
    def __init__(self, model, optimizer, schedule, loss: LossConfig, *, temperature: float,
                 pad_id: int, micro_batch: int = 8, mini_batch_size: int = 0, ppo_epochs: int = 1,
                 max_grad_norm: float = 1.0, ref_model=None, total_iterations: int = 1,
                 norm_length: int | None = None, autocast_dtype: torch.dtype | None = None,
                 seed: int = 0, share_prefix_min: int = 32, micro_batch_tokens: int = 0):
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.loss, self.temperature, self.pad_id = loss, temperature, pad_id
        self.micro_batch, self.max_grad_norm, self.ref_model = micro_batch, max_grad_norm, ref_model
        self.micro_batch_tokens = micro_batch_tokens
        self.mini_batch_size, self.ppo_epochs = mini_batch_size, ppo_epochs
        self.total_iterations, self.seed = total_iterations, seed
        self.norm_length = loss.norm_length or norm_length
        self.autocast_dtype = autocast_dtype
        self.share_prefix_min = share_prefix_min
        self.entropy_history = EntropyHistory()   # EPO: one value per past RL step
        self._updates = 0                         # iterations updated, when none is given
        self._heads: dict[int, torch.Tensor] | None = None  # in a step: fp32 copies of frozen heads

    # --- forward passes ---------------------------------------------------------------
    def _autocast(self, model):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(next(model.parameters()).device.type, dtype=self.autocast_dtype)

    def _model_context(self, model):
        """For a whole step, forward and backward alike (gradient checkpointing replays
        the forward inside backward): grouped K/V attention without copies, and under
        autocast peft's adapters take their input as it comes (peft would cast it up to
        the fp32 adapter weights, and autocast straight back down)."""
        stack = contextlib.ExitStack()
        if model is not None:
            stack.enter_context(grouped_attention(model))
            if self.autocast_dtype is not None and hasattr(model, "peft_config"):
                from peft.helpers import disable_input_dtype_casting

                stack.enter_context(disable_input_dtype_casting(model))
        return stack

    def _head_weight(self, model) -> torch.Tensor | None:
        """A frozen bf16 head's fp32 copy, cast once per update step (None: use it as is)."""
        weight = model.get_output_embeddings().weight
        if weight.dtype == torch.float32 or weight.requires_grad or self._heads is None:
            return None
        if id(model) not in self._heads:
            self._heads[id(model)] = weight.detach().float()
        return self._heads[id(model)]

    def _units(self, samples: list[Sample]) -> list[Unit]:
        return plan_units(samples, self.micro_batch, self.share_prefix_min, self.micro_batch_tokens)

    def _batch(self, samples: list[Sample], unit: Unit):
        """The padded batch of one forward pass, its predict mask and shared prefix ids."""
        if unit.prefix:
            first = samples[unit.rows[0]]
            batch = collate([suffix(samples[i], unit.prefix) for i in unit.rows], self.pad_id)
            prefix_ids = torch.tensor(first.input_ids[:unit.prefix], dtype=torch.long)
        else:
            batch, prefix_ids = collate([samples[i] for i in unit.rows], self.pad_id), None
        return batch, batch["loss_mask"][:, 1:].bool(), prefix_ids

    def _token_stats(self, model, batch: dict[str, torch.Tensor], predict: torch.Tensor,
                     prefix_ids: torch.Tensor | None = None):
        with self._autocast(model):
            logits = response_logits(model, batch["input_ids"], batch["attention_mask"], predict,
                                     prefix_ids, self._head_weight(model))
        logits = logits / self.temperature
        labels = batch["input_ids"][:, 1:][predict]
        return logits, logprobs_from_logits(logits, labels)

    @torch.no_grad()
    def _score(self, model, samples: list[Sample]) -> list[torch.Tensor]:
        """Log-probs of each sample's trained tokens under ``model`` (no gradient)."""
        out: list[torch.Tensor] = [torch.zeros(0)] * len(samples)
        for unit in self._units(samples):
            batch, predict, prefix_ids = self._batch(samples, unit)
            _, logp = self._token_stats(model, batch, predict, prefix_ids)
            for i, part in zip(unit.rows, logp.split(predict.sum(1).tolist())):
                out[i] = part
        return out

    # --- the update ---------------------------------------------------------------------
    def _mini_batches(self, n: int, iteration: int, epoch: int) -> list[list[int]]:
        size = self.mini_batch_size or n
        if size >= n and self.ppo_epochs == 1:
            return [list(range(n))]
        order = np.random.default_rng([self.seed, iteration, epoch]).permutation(n).tolist()
        return [order[i:i + size] for i in range(0, n, size)]

    def step(self, samples: list[Sample], iteration: int | None = None) -> dict[str, float]:
        """Every optimizer step of one iteration over ``samples``; returns metrics.

        ``iteration`` (1-based) places the steps on the lr schedule and EPO's phase
        weight; by default the number of updates so far plus one.
        """
        self._heads = {}
        try:
            with self._model_context(self.model), self._model_context(self.ref_model):
                return self._step(samples, iteration)
        finally:
            self._heads = None          # the frozen head's fp32 copy lives for one step

    def _step(self, samples: list[Sample], iteration: int | None) -> dict[str, float]:
        t0 = time.perf_counter()
        self.model.train()
        samples = [s for s in samples if any(s.loss_mask)]
        if not samples:
            return {}
        iteration = iteration if iteration is not None else self._updates + 1
        self._updates = iteration
        plans = [self._mini_batches(len(samples), iteration, e) for e in range(self.ppo_epochs)]
        n_steps = sum(len(p) for p in plans)
        old = self._score(self.model, samples) if n_steps > 1 else None
        ref = self._score(self.ref_model, samples) \
            if self.ref_model is not None and self.loss.kl_coef > 0 else None

        epo = self.loss.entropy == "epo"
        reference = self.entropy_history.reference()
        beta = phase_weight(iteration - 1, self.total_iterations, self.loss.epo.gamma)
        sums: dict[str, float] = {}
        grad_norms, lr, step = [], 0.0, 0
        for epoch, plan in enumerate(plans):
            for rows in plan:
                mini = [samples[i] for i in rows]
                stats = self._accumulate(mini, None if old is None else [old[i] for i in rows],
                                         None if ref is None else [ref[i] for i in rows],
                                         reference, beta, first_epoch=epoch == 0)
                for k, v in stats.items():
                    sums[k] = max(sums.get(k, 0.0), v) if k.endswith("max") else sums.get(k, 0.0) + v
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.requires_grad], self.max_grad_norm)))
                if self.schedule is not None:
                    lr = self.schedule.set(iteration, step, n_steps)
                else:
                    lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                step += 1
        return self._metrics(samples, sums, grad_norms, lr, n_steps, len(plans[0]), reference, beta,
                             epo, t0)

    def _accumulate(self, mini: list[Sample], old: list[torch.Tensor] | None,
                    ref: list[torch.Tensor] | None, reference: float | None, beta: float,
                    first_epoch: bool) -> dict[str, float]:
        """Backward of one mini-batch's loss, micro-batch by micro-batch; sums for metrics."""
        cfg = self.loss
        lengths = torch.tensor([sum(s.loss_mask) for s in mini])
        copies = torch.tensor([s.weight for s in mini])   # a merged tree step stands for k leaves
        seq_w = sequence_weights(lengths, cfg.aggregation, self.norm_length, copies).tolist()
        epo_w = epo_sample_weights(mini) if cfg.entropy == "epo" else None
        sums = {"tokens": 0.0, "loss/policy": 0.0, "loss/kl": 0.0, "actor/entropy": 0.0,
                "actor/clip_frac": 0.0, "actor/clip_frac_high": 0.0, "actor/clip_frac_low": 0.0,
                "actor/dual_clip_frac": 0.0, "actor/approx_kl": 0.0, "actor/ratio_max": 0.0}
        if first_epoch:
            sums.update({"first_tokens": 0.0, "behaviour_abs": 0.0, "behaviour_kl": 0.0,
                         "behaviour_max": 0.0, "correction_masked": 0.0,
                         "epo/entropy": 0.0, "epo/smooth": 0.0, "epo/out_of_band": 0.0})
        for unit in self._units(mini):
            rows = unit.rows
            batch, predict, prefix_ids = self._batch(mini, unit)
            n = int(predict.sum())
            if n == 0:
                continue
            logits, logp = self._token_stats(self.model, batch, predict, prefix_ids)
            old_lp = logp.detach() if old is None else torch.cat([old[i] for i in rows]).to(logp.dtype)
            adv = batch["advantages"][:, 1:][predict]
            behaviour = batch["behaviour_logprobs"][:, 1:][predict]
            w = _per_token(unit, seq_w, predict).to(logp.dtype)
            k = _per_token(unit, copies.tolist(), predict).to(logp.dtype)   # metrics count copies
            n = float(k.sum())
            correction = rollout_correction_weights(old_lp, behaviour, cfg.rollout_correction,
                                                    cfg.rollout_correction_cap)
            ones = torch.ones_like(logp)
            if cfg.ratio == "sequence":
                token_rows = predict.nonzero()[:, 0]
                log_ratio = sequence_log_ratio(logp, old_lp, token_rows, len(rows))
                policy_tok, st = ppo_clip_loss(log_ratio, torch.zeros_like(logp), adv, ones,
                                               clip_low=cfg.clip_low, clip_high=cfg.clip_high,
                                               dual_clip=cfg.dual_clip)
            else:
                policy_tok, st = ppo_clip_loss(logp, old_lp, adv, ones, clip_low=cfg.clip_low,
                                               clip_high=cfg.clip_high, dual_clip=cfg.dual_clip)
            loss = (policy_tok * correction * w).sum()
            need_entropy_grad = cfg.entropy_coef > 0 or epo_w is not None
            entropy = entropy_from_logits(logits if need_entropy_grad else logits.detach())
            if cfg.entropy_coef > 0:
                loss = loss - cfg.entropy_coef * (entropy * w).sum()
            if ref is not None:
                kl = kl_penalty(logp, torch.cat([ref[i] for i in rows]).to(logp.dtype), cfg.kl_estimator)
                loss = loss + cfg.kl_coef * (kl * w).sum()
                sums["loss/kl"] += float((kl.detach() * k).sum())
            if epo_w is not None:
                ew = _per_token(unit, epo_w, predict).to(entropy.dtype)
                e = cfg.epo
                l_h, l_smooth = epo_terms(entropy, ew, reference, alpha=e.alpha, kappa_low=e.kappa_low,
                                          kappa_high=e.kappa_high, penalty_grad=e.penalty_grad)
                loss = loss + epo_loss(l_h, l_smooth, beta, e.coef)
                if first_epoch:
                    sums["epo/entropy"] += float(l_h.detach())
                    sums["epo/smooth"] += float(l_smooth.detach())
                    if reference is not None:
                        h = entropy.detach()
                        out = (h < e.kappa_low * reference) | (h > e.kappa_high * reference)
                        sums["epo/out_of_band"] += float(out.sum())
            loss.backward()
            sums["tokens"] += n
            sums["loss/policy"] += float((policy_tok.detach() * k).sum())
            sums["actor/entropy"] += float((entropy.detach() * k).sum())
            for key in ("clip_frac", "clip_frac_high", "clip_frac_low", "dual_clip_frac", "approx_kl"):
                sums[f"actor/{key}"] += float(st[key]) * n
            sums["actor/ratio_max"] = max(sums["actor/ratio_max"], float(st["ratio_max"]))
            if first_epoch:
                d = (old_lp - behaviour).detach()
                sums["first_tokens"] += n
                sums["behaviour_abs"] += float((d.abs() * k).sum())
                sums["behaviour_max"] = max(sums["behaviour_max"], float(d.abs().max()))
                # k3 estimate of KL(pi_behaviour || pi_old) from the sampler's tokens
                dc = d.clamp(-20, 20)
                sums["behaviour_kl"] += float(((dc.exp() - 1 - dc) * k).sum())
                sums["correction_masked"] += float((correction == 0).sum())
        return sums

    def _metrics(self, samples, sums, grad_norms, lr, n_steps, first_mini_batches, reference, beta,
                 epo, t0):
        tokens, first = sums.pop("tokens"), sums.pop("first_tokens")
        ratio_max = sums.pop("actor/ratio_max")
        metrics = {k: v / tokens for k, v in sums.items() if k.startswith(("loss/", "actor/"))}
        metrics.update({
            "actor/ratio_max": ratio_max,
            "actor/behaviour_logprob_diff": sums["behaviour_abs"] / first,
            "actor/behaviour_logprob_max_diff": sums["behaviour_max"],
            "actor/behaviour_kl": sums["behaviour_kl"] / first,
            "actor/grad_norm": float(np.mean(grad_norms)),
            "actor/lr": lr,
            "actor/optimizer_steps": float(n_steps),
            "perf/train_tokens": float(sum(len(s.input_ids) for s in samples)),
            "perf/trained_tokens": float(first),
            "perf/update_s": time.perf_counter() - t0,
        })
        if self.loss.rollout_correction == "mis":
            metrics["actor/rollout_correction_masked"] = sums["correction_masked"] / first
        if epo:
            for key in ("epo/entropy", "epo/smooth"):   # each mini-batch's terms are its own means
                sums[key] /= first_mini_batches
            metrics.update(self._epo_metrics(sums, reference, beta, first))
            # the step's history value: the batch L_H, or the paper's mean token entropy
            value = sums["epo/entropy"] if self.loss.epo.history == "batch_loss" else \
                metrics["actor/entropy"]
            self.entropy_history.append(value)
        return metrics

    def _epo_metrics(self, sums: dict[str, float], reference: float | None, beta: float,
                     total_tokens: float) -> dict[str, float]:
        cfg = self.loss.epo
        out = {"epo/entropy": sums["epo/entropy"], "epo/smooth": sums["epo/smooth"],
               "epo/beta": beta, "epo/history_len": float(len(self.entropy_history.values)),
               "loss/epo": -cfg.coef * (sums["epo/entropy"] - beta * sums["epo/smooth"])}
        if reference is not None:
            out.update({"epo/history_mean": reference, "epo/band_low": cfg.kappa_low * reference,
                        "epo/band_high": cfg.kappa_high * reference,
                        "epo/out_of_band_share": sums["epo/out_of_band"] / total_tokens})
        return out

