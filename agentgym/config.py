"""Training configuration: YAML recipes validated against these dataclasses.

``load_config("configs/quickstart.yaml", ["trainer.lr=1e-5"])`` reads the file, applies
``key=value`` overrides and checks every key and type. A misspelt key fails at start-up
with its full path and the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from agentgym.errors import ConfigError


@dataclass
class EnvConfig:
    id: str = "agentgym/TextWorld-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)        # environment options
    eval_kwargs: dict[str, Any] = field(default_factory=dict)   # merged over kwargs for eval
    max_episode_steps: Optional[int] = None                     # None: the registered limit


@dataclass
class LoraConfig:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class ModelConfig:
    name: str = "smollm2-135m"          # smollm2-135m | tiny-smollm2 | HF id | local path
    dtype: str = "auto"                 # auto: fp32 weights, bf16 autocast update where native | float32 | bfloat16 | float16
    device: str = "cpu"
    lora: Optional[LoraConfig] = None
    gradient_checkpointing: bool = False


@dataclass
class RolloutConfig:
    backend: str = "hf"                 # hf | openai (evaluation only)
    base_url: Optional[str] = None      # for backend=openai
    tasks_per_iteration: int = 4        # B distinct tasks (seeds) per iteration
    group_size: int = 4                 # G episodes per task, same seed
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    history_length: int = 2             # past (observation, action) pairs in the prompt
    context: str = "window"             # window | conversation (each prompt extends the last)
    think: bool = True                  # ask for <think>...</think> before <action>
    prefill_action: bool = True         # think off: the reply starts with "<action>" (prompt side)
    env_workers: int = 4                # threads (or processes) stepping environments in parallel
    env_pool: str = "auto"              # auto (the env's preference) | thread | process
    step_timeout_s: float = 60.0        # an environment step slower than this ends the episode
    max_context: Optional[int] = None   # None: the model's own limit


@dataclass
class OTCConfig:
    mode: str = "none"                  # none | grpo | ppo: OTC tool-efficiency reward (tool use)
    alpha: float = 1.0                  # reward = alpha * r_tool(m) * correctness
    max_tool_calls: int = 3             # c, the tool-call budget in r_tool


@dataclass
class OverlongConfig:
    buffer: int = 0                     # L_c, DAPO's soft zone in tokens; 0 disables the penalty
    penalty: float = 1.0                # reward added at |y| = L_max is -penalty
    max_length: Optional[int] = None    # L_max; None: rollout.max_new_tokens


@dataclass
class RewardConfig:
    invalid_action_penalty: float = 0.1  # subtracted from a step's reward when its action is invalid
    invalid_action_scope: str = "trajectory"  # trajectory: lowers the return | step: that step's sample only (verl-agent)
    format: float = 0.0                 # ARPO: reward += format * (-1 if a reply is unparseable else 0)
    overlong: OverlongConfig = field(default_factory=OverlongConfig)
    otc: OTCConfig = field(default_factory=OTCConfig)


@dataclass
class EMPGConfig:
    k: float = 1.0                      # g = exp(-k H~) / mean(exp(-k H~))
    k_next: float = 1.0                 # f = exp(-k_next H~_{t+1})
    zeta: float = 0.05                  # weight of the next-step confidence bonus f
    entropy_source: str = "entropy"     # entropy (rollout token entropies) | logprob (-mean logprob)


@dataclass
class AdvantageConfig:
    episode: str = "grpo"               # grpo | rloo
    normalize: str = "std"              # std | none  (grpo only)
    episode_scope: str = "trajectory"   # trajectory | step: group mean/std over trajectories or step samples
    step: str = "none"                  # none | gigpo | salt
    step_weight: float = 1.0            # gigpo: omega in A = A^E + omega * A^S
    gamma: float = 0.95                 # gigpo: discount of step returns
    step_normalize: str = "mean_norm"   # gigpo: mean_norm | mean_std_norm
    anchor_match: str = "exact"         # gigpo: exact | similarity
    similarity_autojunk: bool = True    # gigpo, similarity: difflib's autojunk (the reference's default)
    similarity_threshold: float = 0.95  # gigpo, anchor_match=similarity: difflib ratio to join a step group
    modulate: str = "none"              # none | empg
    empg: EMPGConfig = field(default_factory=EMPGConfig)


@dataclass
class EPOConfig:
    coef: float = 0.001                 # lambda: L = L_policy - lambda (L_H - beta_k L_smooth)
    alpha: float = 0.1                  # weight of the smoothing penalty (0.05 for ScienceWorld)
    kappa_low: float = 0.0              # band around the history mean: [kappa_low, kappa_high] x H_W
    kappa_high: float = 2.0
    gamma: float = 3.0                  # phase weight beta_k = 1 + exp(-gamma k / floor(K/2))
    penalty_grad: bool = True           # false: the public code's penalty without gradient
    history: str = "batch_loss"         # batch_loss: L_H of each step | token_mean: mean token entropy per step (paper)


@dataclass
class LossConfig:
    clip_low: float = 0.2
    clip_high: float = 0.28
    dual_clip: Optional[float] = 3.0
    kl_coef: float = 0.0                # > 0 loads a frozen reference model
    kl_estimator: str = "k3"            # k1 | k2 | k3 (low_var_kl)
    aggregation: str = "token_mean"     # token_mean | seq_mean_token_mean | seq_mean_token_sum_norm (Dr.GRPO)
    norm_length: Optional[int] = None   # seq_mean_token_sum_norm's constant L; None: rollout.max_new_tokens
    ratio: str = "token"                # token (PPO) | sequence (GSPO: length-normalised sequence ratio)
    rollout_correction: str = "none"    # none | tis | mis: weight pi_old / pi_behaviour per token
    rollout_correction_cap: float = 2.0  # C: tis truncates w at C, mis drops tokens with w > C
    entropy_coef: float = 0.0           # entropy bonus
    entropy: str = "none"               # none | epo (entropy regularisation with smoothing)
    epo: EPOConfig = field(default_factory=EPOConfig)


@dataclass
class ARPOConfig:
    capacity: int = 8                   # successful trajectories kept per task (FIFO)
    success_threshold: float = 0.1      # an episode scoring above this enters the buffer
    fail_std: float = 0.05              # a group is all-failed when its score std is below this
    fail_mean: float = 0.2              # ... and its mean score below this
    key: str = "task_id"                # task_id | task_type: what one buffer is kept per


@dataclass
class FilterConfig:
    zero_variance_groups: bool = False  # DAPO dynamic sampling: drop groups with all-equal returns
    max_retries: int = 3                # extra rollouts per iteration to refill the batch


@dataclass
class AlgorithmConfig:
    reward: RewardConfig = field(default_factory=RewardConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    advantage: AdvantageConfig = field(default_factory=AdvantageConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    replay: str = "none"                # none | arpo (experience replay into all-failed groups)
    arpo: ARPOConfig = field(default_factory=ARPOConfig)


@dataclass
class TrainerConfig:
    iterations: int = 10
    lr: float = 1.0e-6
    weight_decay: float = 0.0
    warmup_iterations: int = 0
    lr_schedule: str = "cosine"         # cosine | constant
    max_grad_norm: float = 1.0
    micro_batch: int = 8                # samples per forward/backward
    mini_batch_size: int = 0            # samples per optimizer step; 0: the whole batch (one step)
    ppo_epochs: int = 1                 # passes over the batch per iteration
    share_prefix_min: int = 32          # samples sharing >= this many leading tokens run them once; 0: off
    samples: str = "per_step"           # per_step | trajectory
    checkpoint_every: int = 10
    eval_every: int = 0                 # 0: evaluate only at the end (when eval.tasks > 0)
    seed: int = 0


@dataclass
class EvalConfig:
    tasks: int = 0                      # eval tasks (seeds) per evaluation; 0 disables
    group_size: int = 1
    temperature: float = 0.0            # 0 = greedy


@dataclass
class LoggingConfig:
    run_dir: str = "runs/run"
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: Optional[str] = None


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


CHOICES = {
    "rollout.backend": ("hf", "openai"),
    "algorithm.advantage.normalize": ("std", "none"),
    "algorithm.advantage.episode_scope": ("trajectory", "step"),
    "algorithm.advantage.step_normalize": ("mean_norm", "mean_std_norm"),
    "algorithm.advantage.anchor_match": ("exact", "similarity"),
    "algorithm.advantage.empg.entropy_source": ("entropy", "logprob"),
    "algorithm.loss.entropy": ("none", "epo"),
    "algorithm.replay": ("none", "arpo"),
    "algorithm.reward.otc.mode": ("none", "grpo", "ppo"),
    "algorithm.arpo.key": ("task_id", "task_type"),
    "trainer.lr_schedule": ("cosine", "constant"),
    "trainer.samples": ("per_step", "trajectory"),
    "rollout.context": ("window", "conversation"),
    "rollout.env_pool": ("auto", "thread", "process"),
    "model.dtype": ("auto", "float32", "bfloat16", "float16"),
    "algorithm.reward.invalid_action_scope": ("trajectory", "step"),
    "algorithm.loss.kl_estimator": ("k1", "k2", "k3"),
    "algorithm.loss.aggregation": ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"),
    "algorithm.loss.ratio": ("token", "sequence"),
    "algorithm.loss.rollout_correction": ("none", "tis", "mis"),
    "algorithm.loss.epo.history": ("batch_loss", "token_mean"),
}


def _check_keys(user: Any, schema: type, path: str) -> None:
    """Unknown keys anywhere in ``user``, reported with the closest valid key."""
    if not isinstance(user, dict):
        return
    hints = typing.get_type_hints(schema)
    for key, value in user.items():
        full = f"{path}{key}"
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1, cutoff=0.5)
            hint = f" Did you mean '{path}{close[0]}'?" if close else \
                f" Valid keys here: {', '.join(hints)}."
            raise ConfigError(f"unknown config key '{full}'.{hint}")
        sub = _dataclass_in(hints[key])
        if sub is not None:
            _check_keys(value, sub, full + ".")


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass in ``X`` or ``Optional[X]``, if any."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


# keys whose choices are the estimators registered in agentgym/credit.py
ESTIMATOR_KEYS = {"algorithm.advantage.episode": "episode", "algorithm.advantage.step": "step",
                  "algorithm.advantage.modulate": "modulate"}


def choices(path: str) -> tuple[str, ...]:
    """The values ``path`` accepts."""
    if path in ESTIMATOR_KEYS:
        from agentgym.credit import estimator_names  # credit imports this module

        return estimator_names(ESTIMATOR_KEYS[path])
    return CHOICES[path]


def _check_choices(cfg: Config) -> None:
    for path in (*CHOICES, *ESTIMATOR_KEYS):
        allowed = choices(path)
        value: Any = cfg
        for part in path.split("."):
            value = getattr(value, part)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(allowed)}")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML recipe, apply ``key=value`` overrides, validate, return a Config."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found")
        try:
            user = OmegaConf.load(path)
        except Exception as e:  # noqa: BLE001 - yaml errors come in many types
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
    else:
        user = OmegaConf.create({})
    try:
        user = OmegaConf.merge(user, OmegaConf.from_dotlist(list(overrides or [])))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override: {e}") from None
    return config_from_dict(OmegaConf.to_container(user, resolve=True))


def config_from_dict(data: dict) -> Config:
    _check_keys(data, Config, "")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), data)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "config"
        message = str(e).split("\n")[0]
        raise ConfigError(f"{key}: {message}") from None
    assert isinstance(cfg, Config)
    _check_choices(cfg)
    _check_algorithm(cfg.algorithm)
    if cfg.trainer.ppo_epochs < 1 or cfg.trainer.mini_batch_size < 0:
        raise ConfigError("trainer.ppo_epochs must be >= 1 and trainer.mini_batch_size >= 0 "
                          f"(0: whole batch), got {cfg.trainer.ppo_epochs}, {cfg.trainer.mini_batch_size}")
    if cfg.trainer.samples == "trajectory" and cfg.rollout.context != "conversation":
        raise ConfigError("trainer.samples=trajectory needs rollout.context=conversation "
                          "(prompts that extend each other)")
    return cfg


def _check_algorithm(algo: AlgorithmConfig) -> None:
    adv = algo.advantage
    if adv.episode_scope == "step" and adv.episode != "grpo":
        raise ConfigError("algorithm.advantage.episode_scope=step needs advantage.episode=grpo "
                          "(RLOO has no step-sample variant); use episode_scope=trajectory")
    if not 0.0 <= adv.gamma <= 1.0:
        raise ConfigError(f"algorithm.advantage.gamma must be in [0, 1], got {adv.gamma}")
    if not 0.0 < adv.similarity_threshold <= 1.0:
        raise ConfigError("algorithm.advantage.similarity_threshold must be in (0, 1], "
                          f"got {adv.similarity_threshold}")
    if algo.reward.invalid_action_scope == "step" and adv.episode_scope != "step":
        raise ConfigError("algorithm.reward.invalid_action_scope=step scores each step sample, so it "
                          "needs algorithm.advantage.episode_scope=step (as verl-agent)")
    if algo.reward.overlong.buffer < 0:
        raise ConfigError(f"algorithm.reward.overlong.buffer must be >= 0, got {algo.reward.overlong.buffer}")
    if algo.loss.rollout_correction_cap <= 0:
        raise ConfigError("algorithm.loss.rollout_correction_cap must be > 0, got "
                          f"{algo.loss.rollout_correction_cap}")
    if algo.filter.max_retries < 0:
        raise ConfigError(f"algorithm.filter.max_retries must be >= 0, got {algo.filter.max_retries}")
    epo = algo.loss.epo
    if epo.kappa_low < 0 or epo.kappa_high < epo.kappa_low:
        raise ConfigError("algorithm.loss.epo needs 0 <= kappa_low <= kappa_high, got "
                          f"{epo.kappa_low}, {epo.kappa_high}")


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)
