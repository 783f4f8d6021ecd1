"""One policy update: PPO-clip over the batch's samples, in micro-batches.

The loss is a token mean over every trained token of the whole batch, so gradient
accumulation over micro-batches gives the same gradient as one big batch. Logits are
computed only at the positions that predict a sampled token: prompts are long and the
vocabulary is large, so this saves most of the lm-head work and memory.

``loss.entropy: epo`` adds EPO's entropy term (algos/epo.py): token entropies weighted
per turn, per trajectory, per batch, a smoothing penalty against the cumulative
history of past batch entropies (``self.entropy_history``, saved in checkpoints) and
the phase weight beta_k.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from agentgym.algos.epo import EntropyHistory, epo_loss, epo_terms, phase_weight, turn_token_weights
from agentgym.algos.ppo import entropy_from_logits, kl_low_var, logprobs_from_logits, ppo_clip_loss
from agentgym.config import LossConfig
from agentgym.samples import Sample, collate


def response_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    predict: torch.Tensor) -> torch.Tensor:
    """Logits at the positions where ``predict`` is True (position t predicts token t+1).

    ``predict`` is ``[B, T-1]``; returns ``[N, V]`` for its N true entries, row-major.
    """
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return model.get_output_embeddings()(hidden[:, :-1][predict])


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


class PolicyUpdater:
    def __init__(self, model, optimizer, scheduler, loss: LossConfig, *, temperature: float,
                 pad_id: int, micro_batch: int = 8, max_grad_norm: float = 1.0, ref_model=None,
                 total_iterations: int = 1):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.loss, self.temperature, self.pad_id = loss, temperature, pad_id
        self.micro_batch, self.max_grad_norm, self.ref_model = micro_batch, max_grad_norm, ref_model
        self.total_iterations = total_iterations
        self.entropy_history = EntropyHistory()   # EPO: L_H of every past RL step

    def _token_stats(self, model, batch: dict[str, torch.Tensor], predict: torch.Tensor):
        logits = response_logits(model, batch["input_ids"], batch["attention_mask"], predict)
        logits = logits / self.temperature
        labels = batch["input_ids"][:, 1:][predict]
        return logits, logprobs_from_logits(logits, labels)

    def step(self, samples: list[Sample], iteration: int | None = None) -> dict[str, float]:
        """Accumulate gradients over micro-batches, clip, take one optimizer step.

        ``iteration`` (1-based) is the RL step for EPO's phase weight; by default the
        number of steps recorded in the entropy history plus one.
        """
        t0 = time.perf_counter()
        self.model.train()
        total_tokens = sum(s.weight * sum(s.loss_mask) for s in samples)  # merged tree steps weigh k
        if total_tokens == 0:
            return {}
        epo = self.loss.entropy == "epo"
        cfg = self.loss.epo
        k = (iteration - 1) if iteration is not None else len(self.entropy_history.values)
        reference = self.entropy_history.reference()
        beta = phase_weight(k, self.total_iterations, cfg.gamma)
        weights = epo_sample_weights(samples) if epo else None
        # similar lengths together: less padding, same gradient
        order = sorted(range(len(samples)), key=lambda i: len(samples[i].input_ids))
        ordered = [samples[i] for i in order]
        sums = {"loss/policy": 0.0, "loss/kl": 0.0, "loss/entropy": 0.0, "actor/clip_frac": 0.0,
                "actor/approx_kl": 0.0, "actor/behaviour_logprob_diff": 0.0}
        epo_sums = {"epo/entropy": 0.0, "epo/smooth": 0.0, "epo/out_of_band": 0.0}
        self.optimizer.zero_grad(set_to_none=True)
        for start in range(0, len(ordered), self.micro_batch):
            batch = collate(ordered[start:start + self.micro_batch], self.pad_id)
            predict = batch["loss_mask"][:, 1:].bool()
            n = int(predict.sum())
            if n == 0:
                continue
            logits, logp = self._token_stats(self.model, batch, predict)
            # one optimizer step per batch: the policy before it is the policy now
            old = logp.detach()
            adv = batch["advantages"][:, 1:][predict]
            ones = torch.ones_like(logp)
            weight = batch["weights"][:, 1:][predict].to(logp.device, logp.dtype)
            policy_loss, stats = ppo_clip_loss(logp, old, adv, ones, clip_low=self.loss.clip_low,
                                               clip_high=self.loss.clip_high,
                                               dual_clip=self.loss.dual_clip)
            policy_loss = policy_loss * weight
            loss = policy_loss.sum()
            entropy = entropy_from_logits(logits) if self.loss.entropy_coef > 0 or epo else \
                entropy_from_logits(logits.detach())
            if self.loss.entropy_coef > 0:
                loss = loss - self.loss.entropy_coef * (entropy * weight).sum()
            extra = 0.0
            if epo:
                rows = order[start:start + self.micro_batch]
                w = torch.zeros(batch["input_ids"].shape, dtype=torch.float64)
                for r, i in enumerate(rows):
                    w[r, :len(weights[i])] = torch.from_numpy(weights[i])
                w = w[:, 1:][predict.cpu()].to(entropy.device, entropy.dtype)
                l_h, l_smooth = epo_terms(entropy, w, reference, alpha=cfg.alpha,
                                          kappa_low=cfg.kappa_low, kappa_high=cfg.kappa_high,
                                          penalty_grad=cfg.penalty_grad)
                extra = epo_loss(l_h, l_smooth, beta, cfg.coef)
                epo_sums["epo/entropy"] += float(l_h.detach())
                epo_sums["epo/smooth"] += float(l_smooth.detach())
                if reference is not None:
                    h = entropy.detach()
                    out = (h < cfg.kappa_low * reference) | (h > cfg.kappa_high * reference)
                    epo_sums["epo/out_of_band"] += float(out.sum())
            if self.ref_model is not None and self.loss.kl_coef > 0:
                with torch.no_grad():
                    _, ref_logp = self._token_stats(self.ref_model, batch, predict)
                kl = kl_low_var(logp, ref_logp)
                loss = loss + self.loss.kl_coef * (kl * weight).sum()
                sums["loss/kl"] += float((kl.detach() * weight).sum())
            (loss / total_tokens + extra).backward()
            behaviour = batch["behaviour_logprobs"][:, 1:][predict]
            sums["loss/policy"] += float(policy_loss.detach().sum())
            n_weighted = float(weight.sum())
            sums["loss/entropy"] += float((entropy.detach() * weight).sum())
            sums["actor/clip_frac"] += float(stats["clip_frac"]) * n_weighted
            sums["actor/approx_kl"] += float(stats["approx_kl"]) * n_weighted
            sums["actor/behaviour_logprob_diff"] += float(((old - behaviour).abs() * weight).sum())
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in self.model.parameters() if p.requires_grad], self.max_grad_norm)
        self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        metrics = {name: v / total_tokens for name, v in sums.items()}
        metrics["actor/entropy"] = metrics.pop("loss/entropy")
        if epo:
            metrics.update(self._epo_metrics(epo_sums, reference, beta, total_tokens))
            self.entropy_history.append(epo_sums["epo/entropy"])
        metrics.update({"actor/grad_norm": float(grad_norm), "actor/lr": lr,
                        "perf/train_tokens": float(sum(len(s.input_ids) for s in samples)),
                        "perf/trained_tokens": float(total_tokens),
                        "perf/update_s": time.perf_counter() - t0})
        return metrics

    def _epo_metrics(self, sums: dict[str, float], reference: float | None, beta: float,
                     total_tokens: int) -> dict[str, float]:
        cfg = self.loss.epo
        out = {"epo/entropy": sums["epo/entropy"], "epo/smooth": sums["epo/smooth"],
               "epo/beta": beta, "epo/history_len": float(len(self.entropy_history.values)),
               "loss/epo": -cfg.coef * (sums["epo/entropy"] - beta * sums["epo/smooth"])}
        if reference is not None:
            out.update({"epo/history_mean": reference, "epo/band_low": cfg.kappa_low * reference,
                        "epo/band_high": cfg.kappa_high * reference,
                        "epo/out_of_band_share": sums["epo/out_of_band"] / total_tokens})
        return out
