"""``agentgym sft``: supervised fine-tuning on demonstrations, a warm start for RL.

A small model that never wins gives RL no signal. SFT first imitates demonstrations
(agentgym/demonstrations.py: the environment's expert, or a run's won episodes), then
``agentgym train CONFIG trainer.init_from=SFT_RUN_DIR`` starts RL from those weights.

    demonstrations -> RUN_DIR/episodes.db (split "sft")  -> samples (samples.py, the
    RL sample builder: prompt ids masked, response ids trained) -> per epoch, in a fixed
    shuffled order: batches of sft.batch_size samples, micro-batches of sft.micro_batch,
    token-mean cross-entropy on the response tokens, one AdamW step per batch
    -> a checkpoint per epoch (checkpoint.py's format: `agentgym eval --checkpoint`,
    `trainer.init_from` and `agentgym export` read it)

The dataset is what the store holds, so ``agentgym sft --resume RUN_DIR`` trains on the
same ids in the same order from the epoch after its last checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from rich.console import Console
from rich.markup import escape

from agentgym import demonstrations
from agentgym.algos.ppo import logprobs_from_logits
from agentgym.checkpoint import latest_checkpoint, load_checkpoint, load_weights, save_checkpoint
from agentgym.config import Config, ModelConfig, to_yaml
from agentgym.episode import Episode
from agentgym.errors import AgentGymError
from agentgym.mainguard import check_main_guard
from agentgym.memory import limit_retained_memory
from agentgym.metrics import METRICS_FILE, MetricsLogger
from agentgym.policy.models import canonical_name
from agentgym.precision import model_precision
from agentgym.preflight import preflight
from agentgym.rundir import RunDirLock
from agentgym.samples import Sample, build_samples, collate
from agentgym.store import EpisodeStore
from agentgym.trainer import build_policy, env_factory, run_config, seed_everything
from agentgym.update import response_logits


def batch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Sample indices of each optimizer step of ``epoch``: a shuffle fixed by (seed,
    epoch), so a resumed run draws the same batches."""
    order = np.random.default_rng([seed, epoch]).permutation(n).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


class SFTTrainer:
    """``SFTTrainer(cfg).train()`` trains on demonstrations and returns the run directory."""

    def __init__(self, cfg: Config, *, resume: bool = False, console: Console | None = None):
        self.cfg = cfg
        self.console = console or Console(highlight=False)
        self.run_dir = Path(cfg.logging.run_dir)
        preflight(cfg, "train")
        self._check_source()
        self._run_lock = RunDirLock(self.run_dir).acquire()
        self.policy = self.store = self.metrics = None
        try:
            self._setup(resume)
        except BaseException:
            self.close()
            raise

    def _check_source(self) -> None:
        source = self.cfg.sft.from_store
        if source is None:
            from agentgym.rollout.envpool import resolve_backend

            pool = resolve_backend(env_factory(self.cfg, "train"), self.cfg.rollout.env_pool)
            if pool == "process":
                check_main_guard("environment worker processes for the expert's episodes")
        elif Path(source).resolve() == self.run_dir.resolve():
            raise AgentGymError("sft.from_store is this run's own directory; set logging.run_dir "
                                "to a new directory for the SFT run")

    def _setup(self, resume: bool) -> None:
        limit_retained_memory()
        cfg, s = self.cfg, self.cfg.sft
        checkpoint = latest_checkpoint(self.run_dir)
        if checkpoint is not None and not resume:
            raise AgentGymError(f"{self.run_dir} already holds a run: continue it with "
                                f"`agentgym sft --resume {self.run_dir}`, or set logging.run_dir")
        (self.run_dir / "config.yaml").write_text(to_yaml(cfg))
        seed_everything(s.seed)
        t0 = time.perf_counter()
        self.policy = build_policy(_with_hf_backend(cfg), seed=s.seed)
        self.console.print(f"model {escape(cfg.model.name)} loaded in {time.perf_counter() - t0:.1f} s")
        precision = model_precision(cfg.model)
        self.console.print(precision.describe())
        self.autocast_dtype = precision.update_autocast
        model = self.policy.model
        if cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=s.lr, weight_decay=s.weight_decay)
        self.store = EpisodeStore(self.run_dir / "episodes.db")
        self.start_epoch = 1
        if checkpoint is not None:
            self.store.quick_check()
            state = load_checkpoint(checkpoint, model, self.optimizer, None, self._rng())
            self.start_epoch = state["iteration"] + 1
            self.console.print(f"resumed from {escape(str(checkpoint))} (epoch {state['iteration']})")
        else:
            if resume:
                self.console.print(f"no checkpoint in {escape(str(self.run_dir))} yet: "
                                   "starting the run again from epoch 1")
            # an attempt that stopped before its first checkpoint is redone from scratch
            self.store.delete_after(-1)
            (self.run_dir / METRICS_FILE).unlink(missing_ok=True)
        self.metrics = MetricsLogger(self.run_dir, tensorboard=cfg.logging.tensorboard,
                                     wandb=cfg.logging.wandb,
                                     wandb_project=cfg.logging.wandb_project, config=cfg)

    def _rng(self) -> np.random.Generator:
        """The task stream a checkpoint records (SFT's data order needs no state)."""
        return np.random.default_rng(self.cfg.sft.seed)

    # --- data ---------------------------------------------------------------------
    def demonstrations(self) -> list[Episode]:
        """The episodes to imitate: recorded in this run's store first, read back from it."""
        if not self.store.count(split=demonstrations.SPLIT):
            episodes = self._collect()
            self.store.add_episodes(episodes)
            self.metrics.log(0, {"sft/episodes_recorded": len(episodes),
                                 "sft/episodes_won": sum(ep.won for ep in episodes)})
        return demonstrations.recorded(self.store, self.cfg.sft.won_only)

    def _collect(self) -> list[Episode]:
        s = self.cfg.sft
        if s.from_store is not None:
            episodes = demonstrations.stored_episodes(s.from_store, s.won_only)
            self.console.print(f"demonstrations: {len(episodes)} "
                               f"{'won ' if s.won_only else ''}episodes from "
                               f"{escape(s.from_store)}", soft_wrap=True)
            return episodes
        from rich.progress import Progress

        with Progress(transient=True, console=self.console,
                      disable=not self.console.is_terminal) as progress:
            task = progress.add_task("expert demonstrations", total=s.tasks)
            episodes = demonstrations.play_expert(
                self.cfg, self.policy, self.run_dir.name,
                on_episode=lambda done, total: progress.update(task, completed=done))
        won = sum(ep.won for ep in episodes)
        self.console.print(f"demonstrations: the expert won {won}/{len(episodes)} train tasks "
                           f"(stored as split '{demonstrations.SPLIT}')")
        return episodes

    def samples(self, episodes: list[Episode]) -> list[Sample]:
        samples = [x for x in build_samples(episodes, self.cfg.trainer.samples) if any(x.loss_mask)]
        if not samples:
            source = self.cfg.sft.from_store
            check = (f"are there won training episodes in {source}?" if source else
                     "check the expert with `agentgym eval CONFIG --policy scripted`")
            raise AgentGymError(f"no demonstrations to train on: no recorded episode was won "
                                f"(or holds reply tokens); {check} (sft.won_only=false takes "
                                "every episode)")
        return samples

    # --- training -----------------------------------------------------------------
    def train(self) -> Path:
        s = self.cfg.sft
        episodes = self.demonstrations()
        self._warn_of_long_replies(episodes)
        samples = self.samples(episodes)
        tokens = sum(sum(x.loss_mask) for x in samples)
        self.console.print(f"sft: {len(samples)} samples, {tokens} response tokens, "
                           f"{len(batch_order(len(samples), s.batch_size, s.seed, 1))} "
                           f"optimizer steps per epoch")
        if self.start_epoch > s.epochs:
            self.console.print(f"all {s.epochs} epochs are done; train longer with sft.epochs=N")
        for epoch in range(self.start_epoch, s.epochs + 1):
            metrics = self.epoch(samples, epoch)
            self.metrics.log(epoch, metrics)
            self.console.print(f"epoch {epoch}/{s.epochs} | loss {metrics['sft/loss']:.4f} | "
                               f"grad norm {metrics['sft/grad_norm']:.2f} | "
                               f"{metrics['perf/epoch_s']:.0f} s")
            self._checkpoint(epoch)
        self.console.print(f"run directory: {escape(str(self.run_dir))} (episodes.db, "
                           "metrics.jsonl, checkpoints/); start RL from it with "
                           f"`agentgym train CONFIG trainer.init_from={escape(str(self.run_dir))}`",
                           soft_wrap=True)
        return self.run_dir

    def _warn_of_long_replies(self, episodes: list[Episode]) -> None:
        """Replies the rollout could not finish: it stops at rollout.max_new_tokens."""
        limit = self.cfg.rollout.max_new_tokens
        lengths = [len(step.response_ids) for ep in episodes for step in ep.steps]
        long = sum(n > limit for n in lengths)
        if long:
            self.console.print(f"note: {long} of {len(lengths)} demonstration replies are longer "
                               f"than rollout.max_new_tokens ({limit}, longest {max(lengths)}); "
                               "RL and eval cut such replies off", soft_wrap=True)

    def epoch(self, samples: list[Sample], epoch: int) -> dict[str, float]:
        s = self.cfg.sft
        t0 = time.perf_counter()
        self.policy.model.train()
        nll, tokens, grad_norms = 0.0, 0, []
        for rows in batch_order(len(samples), s.batch_size, s.seed, epoch):
            batch_nll, batch_tokens, grad_norm = self._step([samples[i] for i in rows])
            nll, tokens = nll + batch_nll, tokens + batch_tokens
            grad_norms.append(grad_norm)
        return {"sft/loss": nll / tokens, "sft/tokens": tokens,
                "sft/optimizer_steps": len(grad_norms),
                "sft/grad_norm": float(np.mean(grad_norms)), "sft/lr": s.lr,
                "perf/epoch_s": time.perf_counter() - t0}

    def _step(self, batch: list[Sample]) -> tuple[float, int, float]:
        """One optimizer step on the token mean of ``batch``'s response NLL; returns the
        NLL sum, the token count and the gradient norm before clipping."""
        tokens = sum(sum(x.loss_mask) for x in batch)
        micro = self.cfg.sft.micro_batch
        total = 0.0
        for start in range(0, len(batch), micro):
            nll = self.response_nll(batch[start:start + micro])
            (nll / tokens).backward()
            total += float(nll.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.cfg.sft.max_grad_norm))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, tokens, grad_norm

    def response_nll(self, samples: list[Sample]) -> torch.Tensor:
        """Sum of -log p(token) over the masked (response) tokens of ``samples``."""
        batch = collate(samples, self.policy.pad_token_id)
        device = next(self.policy.model.parameters()).device
        ids = batch["input_ids"].to(device)
        predict = batch["loss_mask"][:, 1:].bool().to(device)   # position t predicts t+1
        with self._autocast(device):
            logits = response_logits(self.policy.model, ids, batch["attention_mask"].to(device),
                                     predict)
        return -logprobs_from_logits(logits, ids[:, 1:][predict]).sum()

    def _autocast(self, device: torch.device):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype)

    def _checkpoint(self, epoch: int) -> None:
        path = save_checkpoint(self.run_dir, epoch, self.policy.model, self.optimizer, None,
                               self._rng(), extra={"sft": {"epoch": epoch}})
        self.policy.tokenizer.save_pretrained(path / "model")

    def close(self) -> None:
        for part in (self.store, self.metrics, self.policy):
            if part is not None:
                part.close()
        self._run_lock.release()


def _with_hf_backend(cfg: Config) -> Config:
    """SFT trains the HF model and never generates: no vLLM engine to start."""
    hf = copy.deepcopy(cfg)
    hf.rollout.backend = "hf"
    return hf


def sft(config: str | Path | Config | dict | None, overrides: list[str] | None = None,
        resume_dir: str | Path | None = None) -> Path:
    """Run ``agentgym sft`` and return the run directory (arguments as :func:`agentgym.train`)."""
    trainer = SFTTrainer(run_config(config, overrides, resume_dir), resume=resume_dir is not None)
    try:
        return trainer.train()
    finally:
        trainer.close()


# --- trainer.init_from ------------------------------------------------------------------

def init_checkpoint(path: str | Path) -> Path:
    """The checkpoint ``trainer.init_from`` names: a checkpoint directory, or the latest
    checkpoint of a run directory."""
    given = Path(path).expanduser()
    found = given if (given / "model").is_dir() else latest_checkpoint(given)
    if found is None or not (found / "model").is_dir():
        raise AgentGymError(f"trainer.init_from: {path} is neither a checkpoint directory nor "
                            "a run directory with a checkpoint (checkpoints/iter_*/model); "
                            "run `agentgym sft` first, or fix the path")
    return found


def load_init_weights(model, checkpoint: Path, model_cfg: ModelConfig) -> None:
    """Copy a checkpoint's weights (full model or LoRA adapter) into ``model``, after
    checking that it was saved from the model and LoRA layout the config builds."""
    _check_layout(checkpoint, model_cfg)
    try:
        load_weights(model, checkpoint / "model")
    except (AgentGymError, RuntimeError, ValueError, KeyError) as e:
        raise AgentGymError(f"trainer.init_from: {checkpoint} does not fit the model this "
                            f"config builds ({' '.join(str(e).split())[:300]})") from None


def _check_layout(checkpoint: Path, model_cfg: ModelConfig) -> None:
    where = f"trainer.init_from: {checkpoint}"
    saved_name = _saved_model_name(checkpoint)
    if saved_name is not None and canonical_name(saved_name) != canonical_name(model_cfg.name):
        raise AgentGymError(f"{where} was trained from model {saved_name!r}, but model.name is "
                            f"{model_cfg.name!r}; use the same model")
    adapter = _adapter_config(checkpoint / "model")
    lora = model_cfg.lora
    if adapter is None:
        if lora is not None:
            raise AgentGymError(f"{where} holds full model weights, but model.lora is set; "
                                "set model.lora=null to train the full model")
        return
    saved = (adapter.get("r"), adapter.get("lora_alpha"), sorted(adapter.get("target_modules") or []))
    if lora is None:
        raise AgentGymError(f"{where} holds a LoRA adapter (r={saved[0]}, alpha={saved[1]}), but "
                            f"model.lora is not set; set model.lora: {{r: {saved[0]}, alpha: {saved[1]}}}")
    wanted = (lora.r, lora.alpha, sorted(lora.target_modules))
    if saved != wanted:
        raise AgentGymError(f"{where} holds a LoRA adapter with r={saved[0]}, alpha={saved[1]}, "
                            f"target_modules={saved[2]}, but model.lora has r={wanted[0]}, "
                            f"alpha={wanted[1]}, target_modules={wanted[2]}; make them match")


def _saved_model_name(checkpoint: Path) -> str | None:
    """``model.name`` of the run the checkpoint belongs to, when its config.yaml is there."""
    config = checkpoint.parent.parent / "config.yaml"
    try:
        return str(yaml.safe_load(config.read_text())["model"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _adapter_config(model_dir: Path) -> dict | None:
    path = model_dir / "adapter_config.json"
    return json.loads(path.read_text()) if path.is_file() else None
