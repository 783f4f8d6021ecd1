"""The training recipe: rollout -> credit assignment -> update, one iteration at a time.

Read top to bottom: ``Trainer.__init__`` builds the pieces the config names,
``Trainer.train`` runs the loop, ``Trainer.iteration`` is one RL iteration.

From Python (``agentgym.train`` and ``agentgym.Trainer`` are these)::

    import agentgym

    if __name__ == "__main__":      # needed when environments run in worker processes
        run_dir = agentgym.train("configs/quickstart.yaml", ["trainer.iterations=2"])
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape

import agentgym
from agentgym.algos.arpo import ARPOReplay
from agentgym.algos.otc import OTCState
from agentgym.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from agentgym.config import Config, load_config, to_yaml
from agentgym.credit import assign_advantages, trainable
from agentgym.dynamic_sampling import informative_groups, relabel
from agentgym.lr_schedule import LRSchedule
from agentgym.rollout.envpool import EnvMaker, EnvPool
from agentgym.episode import TERMINATIONS, Episode
from agentgym.errors import AgentGymError
from agentgym.mainguard import check_main_guard
from agentgym.memory import limit_retained_memory, peak_rss_gb, release_freed_memory
from agentgym.metrics import (METRICS_FILE, MetricsLogger, comparison_line, eval_line,
                              merge_iterations, read_metrics, summary_line)
from agentgym.policy import make_policy
from agentgym.policy.base import SamplingParams
from agentgym.precision import model_precision
from agentgym.preflight import preflight
from agentgym.prompting import template_for
from agentgym.registry import resolve_id
from agentgym.rollout import RolloutEngine, RolloutSettings
from agentgym.rollout.strategies import make_strategy
from agentgym.rundir import RunDirLock
from agentgym.samples import build_samples
from agentgym.store import EpisodeStore
from agentgym.update import PolicyUpdater


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_policy(cfg: Config, seed: int | None = None):
    lora = None
    if cfg.model.lora is not None:
        lora = {"r": cfg.model.lora.r, "alpha": cfg.model.lora.alpha,
                "dropout": cfg.model.lora.dropout, "target_modules": list(cfg.model.lora.target_modules)}
    if cfg.rollout.backend == "openai":
        return make_policy(cfg.model.name, backend="openai", base_url=cfg.rollout.base_url)
    dtype = model_precision(cfg.model).weights
    if cfg.rollout.backend == "vllm":
        v = cfg.rollout.vllm
        return make_policy(cfg.model.name, backend="vllm", dtype=str(dtype).removeprefix("torch."),
                           device=cfg.model.device, lora=lora, seed=seed, engine_dtype=v.dtype,
                           max_context=cfg.rollout.max_context,
                           gpu_memory_utilization=v.gpu_memory_utilization, sleep=v.sleep,
                           kv_cache_gib=v.kv_cache_gib, cpu_cores=v.cpu_cores,
                           top_logprobs=v.top_logprobs, enforce_eager=v.enforce_eager)
    return make_policy(cfg.model.name, backend="hf", dtype=dtype,
                       device=cfg.model.device, lora=lora, seed=seed)


def env_factory(cfg: Config, split: str):
    kwargs = dict(cfg.env.kwargs)
    if split == "eval":
        kwargs.update(cfg.env.eval_kwargs)
    # picklable, for processes; it imports env.import here and in every worker
    maker = EnvMaker.of(cfg.env.id, kwargs, cfg.env.max_episode_steps, imports=cfg.env.imports)
    agentgym.env_info(cfg.env.id)  # unknown ids fail here, with close matches
    return maker


def make_engine(cfg: Config, policy, split: str, run_id: str) -> RolloutEngine:
    evaluating = split == "eval"
    sampling = SamplingParams(
        max_new_tokens=cfg.rollout.max_new_tokens,
        temperature=cfg.eval.temperature if evaluating else cfg.rollout.temperature,
        top_p=1.0 if evaluating else cfg.rollout.top_p,
        stop_strings=list(template_for(resolve_id(cfg.env.id)).stop))
    settings = RolloutSettings(
        group_size=cfg.eval.group_size if evaluating else cfg.rollout.group_size,
        history_length=cfg.rollout.history_length, think=cfg.rollout.think,
        prefill_action=cfg.rollout.prefill_action, context=cfg.rollout.context,
        sampling=sampling, max_context=cfg.rollout.max_context,
        end_on_unparseable=cfg.algorithm.reward.format > 0,
        match_actions=cfg.rollout.match_actions)
    pool = EnvPool(env_factory(cfg, split), workers=cfg.rollout.env_workers,
                   timeout_s=cfg.rollout.step_timeout_s, backend=cfg.rollout.env_pool)
    strategy = make_strategy("chain" if evaluating else cfg.rollout.strategy, settings.group_size,
                             cfg.rollout.tree, cfg.rollout.arpo, seed=cfg.trainer.seed)
    return RolloutEngine(policy, pool, template_for(resolve_id(cfg.env.id)), settings,
                         env_id=cfg.env.id, run_id=run_id, strategy=strategy)


def episode_metrics(episodes: list[Episode], prefix: str) -> dict[str, float]:
    """Success, reward, length, validity and how episodes ended."""
    if not episodes:
        return {}
    steps = [s for ep in episodes for s in ep.steps]
    n = len(episodes)
    out = {
        f"{prefix}/success_rate": sum(ep.won for ep in episodes) / n,
        f"{prefix}/reward_mean": sum(ep.total_reward for ep in episodes) / n,
        f"{prefix}/episode_length": sum(ep.length for ep in episodes) / n,
        f"{prefix}/invalid_action_rate": (sum(not s.action_valid for s in steps) / len(steps)) if steps else 0.0,
        f"{prefix}/parse_failure_rate": (sum(s.action is None for s in steps) / len(steps)) if steps else 0.0,
        f"{prefix}/response_tokens_mean": (sum(len(s.response_ids) for s in steps) / len(steps)) if steps else 0.0,
    }
    for reason in TERMINATIONS:
        out[f"{prefix}/ended_{reason}"] = sum(ep.termination == reason for ep in episodes) / n
    return out


def generated_tokens(episodes: list[Episode]) -> int:
    """Reply tokens the policy sampled for these episodes (inherited prefixes excluded)."""
    return sum(len(s.response_ids) for ep in episodes for s in ep.own_steps)


class Trainer:
    def __init__(self, cfg: Config, *, resume: bool = False, console: Console | None = None):
        self.cfg = cfg
        self.console = console or Console(highlight=False)
        self.run_dir = Path(cfg.logging.run_dir)
        self.run_id = self.run_dir.name
        preflight(cfg, "train")  # what `agentgym validate` checks, before anything is written
        if _pool_backend(cfg) == "process":
            check_main_guard(f"environment worker processes (rollout.env_pool={cfg.rollout.env_pool})")
        self._run_lock = RunDirLock(self.run_dir).acquire()   # one trainer per run dir
        try:
            self._setup(cfg, resume)
        except BaseException:
            if getattr(self, "policy", None) is not None:
                self.policy.close()  # a vLLM engine's worker processes
            self._run_lock.release()
            raise

    def _setup(self, cfg: Config, resume: bool) -> None:
        limit_retained_memory()
        if not resume and latest_checkpoint(self.run_dir) is not None:
            raise AgentGymError(f"{self.run_dir} already holds a run: continue it with "
                                f"`agentgym train --resume {self.run_dir}`, or set logging.run_dir")
        if resume and latest_checkpoint(self.run_dir) is None:
            self.console.print(f"no checkpoint in {escape(str(self.run_dir))} yet: "
                               "starting the run again from iteration 1")
            resume = False
        # a warm start (e.g. from `agentgym sft`); on resume the checkpoint's weights win, but
        # a KL reference must again be the initial model
        init = None
        if cfg.trainer.init_from and (not resume or cfg.algorithm.loss.kl_coef > 0):
            from agentgym.sft import init_checkpoint, load_init_weights  # sft imports this module

            init = init_checkpoint(cfg.trainer.init_from)
        (self.run_dir / "config.yaml").write_text(to_yaml(cfg))

        seed_everything(cfg.trainer.seed)
        self.task_rng = np.random.default_rng(cfg.trainer.seed)
        t0 = time.perf_counter()
        self.policy = build_policy(cfg, seed=cfg.trainer.seed)
        self.console.print(f"model {escape(cfg.model.name)} loaded in {time.perf_counter() - t0:.1f} s")
        precision = model_precision(cfg.model)
        self.console.print(precision.describe())
        model = self.policy.model
        if init is not None:
            load_init_weights(model, init, cfg.model)
            self.policy.sync_weights(model, 0)
            self.console.print(f"initial weights from {escape(str(init))}")
        if cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        ref_model = None
        if cfg.algorithm.loss.kl_coef > 0:
            ref_model = copy.deepcopy(model).eval().requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.trainer.lr,
                                           weight_decay=cfg.trainer.weight_decay)
        t = cfg.trainer
        self.scheduler = LRSchedule(self.optimizer, iterations=t.iterations,
                                    warmup_iterations=t.warmup_iterations, kind=t.lr_schedule)
        self.updater = PolicyUpdater(model, self.optimizer, self.scheduler, cfg.algorithm.loss,
                                     temperature=cfg.rollout.temperature,
                                     pad_id=self.policy.tokenizer.pad_token_id,
                                     micro_batch=t.micro_batch, mini_batch_size=t.mini_batch_size,
                                     ppo_epochs=t.ppo_epochs, max_grad_norm=t.max_grad_norm,
                                     ref_model=ref_model, total_iterations=t.iterations,
                                     norm_length=cfg.rollout.max_new_tokens,
                                     autocast_dtype=precision.update_autocast, seed=t.seed,
                                     share_prefix_min=t.share_prefix_min,
                                     micro_batch_tokens=t.micro_batch_tokens)
        self.otc_state = OTCState() if cfg.algorithm.reward.otc.mode == "grpo" else None
        self.replay = None
        if cfg.algorithm.replay == "arpo":
            self.replay = ARPOReplay(**dataclasses.asdict(cfg.algorithm.arpo), seed=cfg.trainer.seed)
        self.train_engine = make_engine(cfg, self.policy, "train", self.run_id)
        self.eval_engine = make_engine(cfg, self.policy, "eval", self.run_id) if cfg.eval.tasks else None
        self.store = EpisodeStore(self.run_dir / "episodes.db")
        if resume:
            self.store.quick_check()       # never carry on over damaged pages
        else:
            self._discard_unfinished_run()
        self.metrics = MetricsLogger(self.run_dir, tensorboard=cfg.logging.tensorboard,
                                     wandb=cfg.logging.wandb, wandb_project=cfg.logging.wandb_project,
                                     config=cfg)
        self.start_iteration = 1
        self.tokens_total = 0           # reply tokens sampled for training so far
        if resume:
            ckpt = latest_checkpoint(self.run_dir)
            if ckpt is None:
                raise AgentGymError(f"no checkpoint in {self.run_dir}/checkpoints to resume from")
            state = load_checkpoint(ckpt, model, self.optimizer, self.scheduler, self.task_rng,
                                    sampler=self.policy)
            self.start_iteration = state["iteration"] + 1
            self.policy.sync_weights(model, state["iteration"])  # vLLM starts from the base weights
            # (the lr is set before every optimizer step from this config's schedule, so a
            # resume that extends trainer.iterations follows the extended schedule)
            # stateful algorithm pieces continue where the checkpoint left them
            extra = state.get("extra", {})
            for name, piece in self._stateful().items():
                if name in extra:
                    piece.load_state_dict(extra[name])
            # episodes written after that checkpoint belong to a run that was cut off
            self.store.delete_after(state["iteration"])
            self.console.print(f"resumed from {escape(str(ckpt))} (iteration {state['iteration']})")

    def _discard_unfinished_run(self) -> None:
        """A run that stopped before its first checkpoint left episodes (and metrics) that
        this fresh start will write again: drop them, and say so."""
        dropped = self.store.delete_after(-1)
        if dropped:
            self.console.print(f"dropped {dropped} episodes of an earlier attempt that "
                               "stopped before its first checkpoint")
            (self.run_dir / METRICS_FILE).unlink(missing_ok=True)

    def rollout(self, engine: RolloutEngine, seeds: list[int], iteration: int, split: str) -> list[Episode]:
        from rich.progress import Progress

        # a live line on a terminal; nothing (not a blank line per rollout) in a log file
        with Progress(transient=True, console=self.console,
                      disable=not self.console.is_terminal) as progress:
            task = progress.add_task(f"{split} rollout {iteration}", total=None)
            episodes = engine.run(seeds, iteration=iteration, split=split,
                                  on_turn=lambda turn, active: progress.update(
                                      task, description=f"{split} rollout {iteration}: "
                                      f"turn {turn + 1}, {active} episodes running"))
        return episodes

    def iteration(self, it: int) -> dict[str, float]:
        cfg = self.cfg
        seeds = [int(s) for s in self.task_rng.integers(0, 2**31 - 1, size=cfg.rollout.tasks_per_iteration)]
        t0 = time.perf_counter()
        episodes = self.rollout(self.train_engine, seeds, it, "train")
        rollout_s = time.perf_counter() - t0
        release_freed_memory()   # the generation's K/V cache
        if not trainable(episodes):
            self.store.add_episodes(episodes)
            first = next((ep.error for ep in episodes if ep.error), "no steps were played")
            raise AgentGymError(f"iteration {it}: no episode could be trained on; every one "
                                f"ended in an environment failure, e.g. {first}")
        metrics = episode_metrics(episodes, "rollout")
        generated = generated_tokens(episodes)
        self.tokens_total += generated
        metrics.update({"perf/rollout_s": rollout_s, "perf/tokens_per_s": generated / rollout_s})
        metrics.update(self.train_engine.budget.metrics())
        metrics.update(self.train_engine.strategy.metrics())
        if self.replay is not None:  # after the rollout metrics, so they stay the policy's own
            episodes, replay_metrics = self.replay.apply(episodes)
            metrics.update(replay_metrics)
        metrics.update(self._credit(episodes))
        trained = episodes
        if cfg.algorithm.filter.zero_variance_groups:
            trained, played, filter_metrics = self._refill(episodes, it)
            episodes = episodes + played
            metrics.update(filter_metrics)
            metrics.update(self._credit(trained))   # batch statistics over the kept groups
        self.store.add_episodes(episodes)
        samples = build_samples(trainable(trained), cfg.trainer.samples,
                                cfg.rollout.tree.shared_steps)
        self.policy.sleep()  # vLLM on a GPU frees its memory for the update; no-op otherwise
        with self.console.status(f"update {it}: {len(samples)} samples"):
            metrics.update(self.updater.step(samples, iteration=it))
        release_freed_memory()   # the update's activations
        # weight sync: the next rollout samples from the updated weights (vLLM; HF shares them)
        metrics.update(self.policy.sync_weights(self.policy.model, it))
        metrics["perf/iteration_s"] = time.perf_counter() - t0
        metrics["perf/peak_rss_gb"] = peak_rss_gb()
        metrics["rollout/tokens_total"] = self.tokens_total
        return metrics

    def _credit(self, episodes: list[Episode]) -> dict[str, float]:
        return assign_advantages(episodes, self.cfg.algorithm, self.otc_state,
                                 max_new_tokens=self.cfg.rollout.max_new_tokens)

    def _refill(self, episodes: list[Episode], it: int) -> tuple[list[Episode], list[Episode], dict]:
        """Dynamic sampling: the informative groups of ``episodes``, topped up with more
        rollouts; returns (kept episodes, extra episodes played, filter/ metrics)."""
        target, retries = self.cfg.rollout.tasks_per_iteration, self.cfg.algorithm.filter.max_retries
        kept = informative_groups(episodes)
        dropped = len({ep.group_id for ep in trainable(episodes)}) - len(kept)
        played: list[Episode] = []
        tries = 0
        while len(kept) < target and tries < retries:
            tries += 1
            seeds = [int(s) for s in self.task_rng.integers(0, 2**31 - 1, size=target - len(kept))]
            more = self.rollout(self.train_engine, seeds, it, "train")
            self.tokens_total += generated_tokens(more)
            relabel(more, f"refill{tries}")
            if self.replay is not None:
                more, _ = self.replay.apply(more)
            self._credit(more)
            played += more
            new = informative_groups(more)
            dropped += len({ep.group_id for ep in trainable(more)}) - len(new)
            kept += new
        kept = kept[:target]
        metrics = {"filter/kept_groups": float(len(kept)), "filter/dropped_groups": float(dropped),
                   "filter/retries": float(tries), "filter/batch_fill": len(kept) / target}
        if not kept:  # nothing informative at all: train on the batch as played
            return episodes, played, metrics
        return [ep for g in kept for ep in g], played, metrics

    def evaluate(self, iteration: int) -> dict[str, float]:
        if self.eval_engine is None:
            return {}
        self.policy.model.eval()
        episodes = self.rollout(self.eval_engine, list(range(self.cfg.eval.tasks)), iteration, "eval")
        self.store.add_episodes(episodes)
        return episode_metrics(episodes, "eval")

    def train(self) -> Path:
        cfg = self.cfg
        last = cfg.trainer.iterations
        elapsed, self.tokens_total = self._cumulative_so_far()
        started = time.perf_counter() - elapsed
        before = self._eval_before_training()
        after: dict[str, float] = {}
        for it in range(self.start_iteration, last + 1):
            metrics = self.iteration(it)
            if cfg.eval.tasks and ((cfg.trainer.eval_every and it % cfg.trainer.eval_every == 0)
                                   or it == last):
                after = self.evaluate(it)
                metrics.update(after)
            metrics["time/elapsed_s"] = time.perf_counter() - started
            self.metrics.log(it, metrics)
            shown = {k: v for k, v in metrics.items()  # KL is 0 by construction at kl_coef 0
                     if not (k == "loss/kl" and cfg.algorithm.loss.kl_coef == 0)}
            self.console.print(summary_line(it, shown, total=last), soft_wrap=True)
            if it % cfg.trainer.checkpoint_every == 0 or it == last:
                path = save_checkpoint(self.run_dir, it, self.policy.model, self.optimizer,
                                       self.scheduler, self.task_rng, sampler=self.policy,
                                       extra=self._checkpoint_extra())
                self.policy.tokenizer.save_pretrained(path / "model")
        self.metrics.plot()
        self.console.print(f"run directory: {escape(str(self.run_dir))} (episodes.db, metrics.jsonl, "
                           f"learning_curves.png, checkpoints/)", soft_wrap=True)
        if before and after:
            self.console.print(comparison_line(before, after), soft_wrap=True)
        return self.run_dir

    def _cumulative_so_far(self) -> tuple[float, int]:
        """``time/elapsed_s`` and ``rollout/tokens_total`` where the run stood before
        ``start_iteration`` (0, 0 on a new run): a resumed run continues both counts."""
        done = [r for r in merge_iterations(read_metrics(self.run_dir))
                if 0 < r["iteration"] < self.start_iteration]
        last = done[-1] if done else {}
        return float(last.get("time/elapsed_s", 0.0)), int(last.get("rollout/tokens_total", 0))

    def _eval_before_training(self) -> dict[str, float]:
        """The eval of the initial policy (iteration 0): run and printed on a new run,
        read back from metrics.jsonl on a resumed one."""
        if not self.cfg.eval.tasks:
            return {}
        if self.start_iteration > 1:
            logged = [r for r in read_metrics(self.run_dir) if r["iteration"] == 0]
            return {k: v for r in logged for k, v in r.items() if k.startswith("eval/")}
        before = self.evaluate(0)
        self.metrics.log(0, before)
        self.console.print(eval_line("eval before training", before), soft_wrap=True)
        return before

    def _stateful(self) -> dict:
        """Algorithm pieces with state across iterations (``state_dict`` /
        ``load_state_dict``), saved in every checkpoint and restored on resume."""
        pieces = {"epo_history": self.updater.entropy_history, "arpo": self.replay,
                  "otc": self.otc_state}
        return {name: piece for name, piece in pieces.items() if piece is not None}

    def _checkpoint_extra(self) -> dict:
        return {name: piece.state_dict() for name, piece in self._stateful().items()}

    def close(self) -> None:
        for engine in (self.train_engine, self.eval_engine):
            if engine is not None:
                engine.pool.close()
        self.store.close()
        self.metrics.close()
        self.policy.close()
        self._run_lock.release()


def _pool_backend(cfg: Config) -> str:
    from agentgym.rollout.envpool import resolve_backend

    return resolve_backend(env_factory(cfg, "train"), cfg.rollout.env_pool)


def train(config: str | Path | Config | dict | None, overrides: list[str] | None = None,
          resume_dir: str | Path | None = None) -> Path:
    """Train, and return the run directory.

    ``config``: a YAML recipe's path, a :class:`~agentgym.config.Config`, or a dict of
    the same shape; ``overrides``: ``["trainer.lr=1e-5", ...]`` applied on top.
    ``resume_dir`` continues the run in that directory instead (``config`` None).
    Everything ``agentgym validate`` checks is checked before any work starts.
    """
    if isinstance(config, (Config, dict)):
        resume_dir = None   # a config given as an object always starts a new run
    return _run(run_config(config, overrides, resume_dir), resume=resume_dir is not None)


def run_config(config: str | Path | Config | dict | None, overrides: list[str] | None,
               resume_dir: str | Path | None) -> Config:
    """The config a run uses: a resumed run's saved ``config.yaml``, else ``config`` (a
    path, a Config or a dict), with ``overrides`` on top."""
    if resume_dir is not None:
        saved = Path(resume_dir) / "config.yaml"
        if not saved.is_file():
            raise AgentGymError(f"{resume_dir} has no config.yaml: is it a run directory?")
        cfg = load_config(saved, overrides)
        cfg.logging.run_dir = str(resume_dir)
        return cfg
    if isinstance(config, (Config, dict)):
        data = dataclasses.asdict(config) if isinstance(config, Config) else dict(config)
        return load_config(None, overrides, base=data)
    return load_config(config, overrides)


def _run(cfg: Config, resume: bool) -> Path:
    trainer = Trainer(cfg, resume=resume)
    try:
        return trainer.train()
    finally:
        trainer.close()
