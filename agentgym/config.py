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

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from agentgym.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """The values a numeric key accepts; checked by :func:`load_config` (None passes)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False              # low itself is excluded
    high_open: bool = False

    def contains(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None
                    and (value > self.high or (self.high_open and value == self.high)))

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return (f"in {'(' if self.low_open else '['}{self.low:g}, "
                f"{self.high:g}{')' if self.high_open else ']'}")


def bounded(default: Any, *, gt: float | None = None, ge: float | None = None,
            lt: float | None = None, le: float | None = None) -> Any:
    """A dataclass field whose value must lie in a range, e.g. ``bounded(4, ge=1)``."""
    low, high = (gt if gt is not None else ge), (lt if lt is not None else le)
    return field(default=default, metadata={"range": Range(low, high, gt is not None, lt is not None)})


@dataclass
class EnvConfig:
    id: str = "agentgym/TextWorld-v0"   # a registered id, or "my_package.envs:MyEnv-v0"
    kwargs: dict[str, Any] = field(default_factory=dict)        # environment options
    eval_kwargs: dict[str, Any] = field(default_factory=dict)   # merged over kwargs for eval
    max_episode_steps: Optional[int] = bounded(None, ge=1)      # None: the registered limit
    # modules that register environments, imported before the env is made (also in worker
    # processes); written `import:` in YAML, `imports` is the attribute
    imports: list[str] = field(default_factory=list)


@dataclass
class LoraConfig:
    r: int = bounded(8, ge=1)
    alpha: int = bounded(16, gt=0)
    dropout: float = bounded(0.0, ge=0, lt=1)
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class ModelConfig:
    name: str = "smollm2-135m"          # smollm2-135m | tiny-smollm2 | HF id | local path
    dtype: str = "auto"                 # auto: fp32 weights, bf16 autocast update where native | float32 | bfloat16 | float16
    device: str = "auto"                # auto (cuda when available, else cpu) | cpu | cuda | cuda:N
    lora: Optional[LoraConfig] = None
    gradient_checkpointing: bool = False


@dataclass
class TreeConfig:
    """``rollout.tree``: the shape of Tree-GRPO and TreePO trees; training on shared steps."""
    trees: int = 2                      # tree_grpo: M trees per task (each starts as a chain)
    rounds: int = 1                     # tree_grpo: L expansion rounds
    expansions: int = 3                 # tree_grpo: N nodes expanded per tree per round
    replacement: bool = True            # tree_grpo: draw nodes with replacement (official code)
    width: int = 2                      # treepo: paths started per task
    branch: int = 2                     # treepo: a surviving path forks into this many per turn
    leaves: int = 8                     # treepo: leaf budget per task
    shared_steps: str = "duplicate"     # duplicate (one sample per leaf) | merge (one, weighted)


@dataclass
class BranchingConfig:
    """``rollout.arpo``: ARPO's entropy-adaptive branching (tool use)."""
    budget: int = 8                     # leaves per task
    initial: int = 4                    # chains started per task (the paper: budget / 2)
    beta: float = 0.5                   # P(branch) = clip(beta + weight * dH, 0, 1)
    weight: float = 0.2
    entropy_tokens: int = 20            # entropy of the first <= this many tokens of a reply
    rule: str = "paper"                 # paper | official (U - weight * dH <= beta, beam forks)
    beam: int = 2                       # official rule: children per branching


@dataclass
class VLLMConfig:
    """rollout.backend=vllm: the engine's settings (docs/models.md, "vLLM backend")."""
    dtype: str = "auto"                 # auto: bfloat16 where the CPU/GPU has it natively, else model.dtype
    kv_cache_gib: int = bounded(2, ge=1)  # CPU: KV-cache size in GiB
    cpu_cores: str = "auto"             # CPU: cores for the engine's threads, e.g. "0-1" (auto: vLLM's choice)
    gpu_memory_utilization: float = bounded(0.5, gt=0, le=1)  # GPU: share of the device vLLM takes (the trainer needs the rest)
    sleep: bool = True                  # GPU: free vLLM's memory during each update (sleep mode)
    top_logprobs: int = bounded(20, ge=1)  # log-probs per position the entropy estimate uses
    enforce_eager: bool = True          # no torch.compile: faster start, slower decoding on GPU


@dataclass
class RolloutConfig:
    backend: str = "hf"                 # hf | vllm | openai (evaluation only)
    base_url: Optional[str] = None      # for backend=openai
    tasks_per_iteration: int = bounded(4, ge=1)   # B distinct tasks (seeds) per iteration
    group_size: int = bounded(4, ge=1)  # G episodes per task, same seed
    temperature: float = bounded(1.0, gt=0)       # sampling for training (eval.temperature: eval)
    top_p: float = bounded(1.0, gt=0, le=1)
    max_new_tokens: int = bounded(128, ge=1)
    history_length: int = bounded(2, ge=0)  # past (observation, action) pairs in the prompt
    context: str = "window"             # window | conversation (each prompt extends the last)
    think: bool = True                  # ask for <think>...</think> before <action>
    prefill_action: bool = True         # think off: the reply starts with "<action>" (prompt side)
    match_actions: bool = True          # a reply naming an admissible action ("take the knife") plays it
    env_workers: int = bounded(4, ge=1)  # threads (or processes) stepping environments in parallel
    env_pool: str = "auto"              # auto (the env's preference) | thread | process
    step_timeout_s: float = bounded(60.0, gt=0)  # an environment step slower than this ends the episode
    max_context: Optional[int] = bounded(None, ge=1)  # None: the model's own limit
    strategy: str = "chain"             # chain | tree_grpo | treepo | arpo (training rollouts)
    tree: TreeConfig = field(default_factory=TreeConfig)
    arpo: BranchingConfig = field(default_factory=BranchingConfig)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)


@dataclass
class OTCConfig:
    mode: str = "none"                  # none | grpo | ppo: OTC tool-efficiency reward (tool use)
    alpha: float = bounded(1.0, ge=0)   # reward = alpha * r_tool(m) * correctness
    max_tool_calls: int = bounded(3, ge=0)  # c, the tool-call budget in r_tool


@dataclass
class OverlongConfig:
    buffer: int = bounded(0, ge=0)      # L_c, DAPO's soft zone in tokens; 0 disables the penalty
    penalty: float = bounded(1.0, ge=0)  # reward added at |y| = L_max is -penalty
    max_length: Optional[int] = bounded(None, ge=1)  # L_max; None: rollout.max_new_tokens


@dataclass
class RewardConfig:
    invalid_action_penalty: float = bounded(0.1, ge=0)  # subtracted from a step's reward when its action is invalid
    invalid_action_scope: str = "trajectory"  # trajectory: lowers the return | step: that step's sample only (verl-agent)
    format: float = bounded(0.0, ge=0)  # ARPO: reward += format * (-1 if a reply is unparseable else 0)
    overlong: OverlongConfig = field(default_factory=OverlongConfig)
    otc: OTCConfig = field(default_factory=OTCConfig)


@dataclass
class EMPGConfig:
    k: float = 1.0                      # g = exp(-k H~) / mean(exp(-k H~))
    k_next: float = 1.0                 # f = exp(-k_next H~_{t+1})
    zeta: float = 0.05                  # weight of the next-step confidence bonus f
    entropy_source: str = "entropy"     # entropy (rollout token entropies) | logprob (-mean logprob)


@dataclass
class GiGPOConfig:
    weight: float = bounded(1.0, ge=0)  # omega in A = A^E + omega * A^S
    gamma: float = bounded(0.95, ge=0, le=1)  # discount of step returns
    normalize: str = "mean_norm"        # A^S: mean_norm | mean_std_norm
    anchor_match: str = "exact"         # exact | similarity
    similarity_autojunk: bool = True    # similarity: difflib's autojunk (the reference's default)
    similarity_threshold: float = bounded(0.95, gt=0, le=1)  # similarity: difflib ratio to join a step group


@dataclass
class AdvantageConfig:
    episode: str = "grpo"               # grpo | rloo | tree_grpo | treepo (tree rollouts)
    attribution: str = "soft"           # soft | hard: a step shared by leaves gets their mean
    normalize: str = "std"              # std | none  (grpo only)
    episode_scope: str = "trajectory"   # trajectory | step: group mean/std over trajectories or step samples
    step: str = "none"                  # none | gigpo | salt
    gigpo: GiGPOConfig = field(default_factory=GiGPOConfig)
    modulate: str = "none"              # none | empg
    empg: EMPGConfig = field(default_factory=EMPGConfig)
    # sections of estimators registered outside agentgym (credit.register_estimator(...,
    # config=...)): name -> keys, checked against the estimator's own dataclass
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EPOConfig:
    coef: float = bounded(0.001, ge=0)  # lambda: L = L_policy - lambda (L_H - beta_k L_smooth)
    alpha: float = bounded(0.1, ge=0)   # weight of the smoothing penalty (0.05 for ScienceWorld)
    kappa_low: float = bounded(0.0, ge=0)  # band around the history mean: [kappa_low, kappa_high] x H_W
    kappa_high: float = 2.0
    gamma: float = bounded(3.0, ge=0)   # phase weight beta_k = 1 + exp(-gamma k / floor(K/2))
    penalty_grad: bool = True           # false: the public code's penalty without gradient
    history: str = "batch_loss"         # batch_loss: L_H of each step | token_mean: mean token entropy per step (paper)


@dataclass
class LossConfig:
    clip_low: float = bounded(0.2, ge=0, lt=1)
    clip_high: float = bounded(0.28, ge=0)
    dual_clip: Optional[float] = bounded(3.0, gt=1)  # None: off
    kl_coef: float = bounded(0.0, ge=0)  # > 0 loads a frozen reference model
    kl_estimator: str = "k3"            # k1 | k2 | k3 (low_var_kl)
    aggregation: str = "token_mean"     # token_mean | seq_mean_token_mean | seq_mean_token_sum_norm (Dr.GRPO)
    norm_length: Optional[int] = bounded(None, ge=1)  # seq_mean_token_sum_norm's constant L; None: rollout.max_new_tokens
    ratio: str = "token"                # token (PPO) | sequence (GSPO: length-normalised sequence ratio)
    rollout_correction: str = "none"    # none | tis | mis: weight pi_old / pi_behaviour per token
    rollout_correction_cap: float = bounded(2.0, gt=0)  # C: tis truncates w at C, mis drops tokens with w > C
    entropy_coef: float = bounded(0.0, ge=0)  # entropy bonus
    entropy: str = "none"               # none | epo (entropy regularisation with smoothing)
    epo: EPOConfig = field(default_factory=EPOConfig)


@dataclass
class ARPOConfig:
    capacity: int = bounded(8, ge=1)    # successful trajectories kept per task (FIFO)
    success_threshold: float = 0.1      # an episode scoring above this enters the buffer
    fail_std: float = bounded(0.05, ge=0)  # a group is all-failed when its score std is below this
    fail_mean: float = 0.2              # ... and its mean score below this
    key: str = "task_id"                # task_id | task_type: what one buffer is kept per


@dataclass
class FilterConfig:
    zero_variance_groups: bool = False  # DAPO dynamic sampling: drop groups with all-equal returns
    max_retries: int = bounded(3, ge=0)  # extra rollouts per iteration to refill the batch


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
    iterations: int = bounded(10, ge=0)
    lr: float = bounded(1.0e-6, ge=0)
    weight_decay: float = bounded(0.0, ge=0)
    warmup_iterations: int = bounded(0, ge=0)
    lr_schedule: str = "cosine"         # cosine | constant
    max_grad_norm: float = bounded(1.0, gt=0)
    micro_batch: int = bounded(8, ge=1)  # samples per forward/backward
    micro_batch_tokens: int = bounded(2048, ge=0)  # tokens (padding included) per forward/backward; 0: no cap
    mini_batch_size: int = bounded(0, ge=0)  # samples per optimizer step; 0: the whole batch (one step)
    ppo_epochs: int = bounded(1, ge=1)  # passes over the batch per iteration
    share_prefix_min: int = bounded(32, ge=0)  # samples sharing >= this many leading tokens run them once; 0: off
    samples: str = "per_step"           # per_step | trajectory
    checkpoint_every: int = bounded(10, ge=1)
    eval_every: int = bounded(0, ge=0)  # 0: evaluate before training and at the end (eval.tasks > 0)
    seed: int = bounded(0, ge=0)
    # a run directory (its latest checkpoint) or a checkpoint directory, e.g. of
    # `agentgym sft`: a new run starts from its weights (fresh optimizer, iteration 1)
    init_from: Optional[str] = None


@dataclass
class EvalConfig:
    tasks: int = bounded(0, ge=0)       # eval tasks (seeds) per evaluation; 0 disables
    group_size: int = bounded(1, ge=1)
    temperature: float = bounded(0.0, ge=0)  # 0 = greedy


@dataclass
class SFTConfig:
    """``agentgym sft``: supervised fine-tuning on demonstrations before RL."""
    tasks: int = bounded(64, ge=1)      # train-split tasks the environment's expert plays
    epochs: int = bounded(2, ge=1)      # passes over the demonstrations; a checkpoint after each
    lr: float = bounded(1.0e-4, gt=0)
    weight_decay: float = bounded(0.0, ge=0)
    batch_size: int = bounded(16, ge=1)  # samples per optimizer step
    micro_batch: int = bounded(8, ge=1)  # samples per forward/backward
    max_grad_norm: float = bounded(1.0, gt=0)
    seed: int = bounded(0, ge=0)        # the expert's task seeds and the data order
    from_store: Optional[str] = None    # a run directory: train on its stored episodes instead
    won_only: bool = True               # only episodes that were won are demonstrations


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
    sft: SFTConfig = field(default_factory=SFTConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


CHOICES = {
    "rollout.backend": ("hf", "vllm", "openai"),
    "algorithm.advantage.attribution": ("soft", "hard"),
    "rollout.vllm.dtype": ("auto", "float32", "bfloat16", "float16"),
    "algorithm.advantage.normalize": ("std", "none"),
    "algorithm.advantage.episode_scope": ("trajectory", "step"),
    "algorithm.advantage.gigpo.normalize": ("mean_norm", "mean_std_norm"),
    "algorithm.advantage.gigpo.anchor_match": ("exact", "similarity"),
    "algorithm.advantage.empg.entropy_source": ("entropy", "logprob"),
    "algorithm.loss.entropy": ("none", "epo"),
    "algorithm.replay": ("none", "arpo"),
    "algorithm.reward.otc.mode": ("none", "grpo", "ppo"),
    "algorithm.arpo.key": ("task_id", "task_type"),
    "trainer.lr_schedule": ("cosine", "constant"),
    "trainer.samples": ("per_step", "trajectory"),
    "rollout.context": ("window", "conversation"),
    "rollout.env_pool": ("auto", "thread", "process"),
    "rollout.strategy": ("chain", "tree_grpo", "treepo", "arpo"),
    "rollout.tree.shared_steps": ("duplicate", "merge"),
    "rollout.arpo.rule": ("paper", "official"),
    "model.dtype": ("auto", "float32", "bfloat16", "float16"),
    "algorithm.reward.invalid_action_scope": ("trajectory", "step"),
    "algorithm.loss.kl_estimator": ("k1", "k2", "k3"),
    "algorithm.loss.aggregation": ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"),
    "algorithm.loss.ratio": ("token", "sequence"),
    "algorithm.loss.rollout_correction": ("none", "tis", "mis"),
    "algorithm.loss.epo.history": ("batch_loss", "token_mean"),
}


# keys that moved into an estimator's own section: old path -> new path
MOVED_KEYS = {f"algorithm.advantage.{old}": f"algorithm.advantage.gigpo.{new}" for old, new in (
    ("step_weight", "weight"), ("gamma", "gamma"), ("step_normalize", "normalize"),
    ("anchor_match", "anchor_match"), ("similarity_autojunk", "similarity_autojunk"),
    ("similarity_threshold", "similarity_threshold"))}


def _check_keys(user: Any, schema: type, path: str) -> None:
    """Unknown keys anywhere in ``user``, reported with the closest valid key."""
    if not isinstance(user, dict):
        return
    hints = typing.get_type_hints(schema)
    for key, value in user.items():
        full = f"{path}{key}"
        if full in MOVED_KEYS:
            raise ConfigError(f"config key '{full}' is now '{MOVED_KEYS[full]}' (each estimator "
                              f"has its own section); rename it")
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


def _check_ranges(node: Any, path: str = "") -> None:
    """Every ``bounded`` field of the config tree, recursively."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            _check_ranges(value, f"{path}{f.name}.")
            continue
        bounds = f.metadata.get("range")
        if bounds is not None and isinstance(value, (int, float)) and not bounds.contains(value):
            raise ConfigError(f"{path}{f.name} must be {bounds}, got {value}")


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


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> Config:
    """Read a YAML recipe (or take ``base``, a dict of the same shape), apply ``key=value``
    overrides, validate, return a Config."""
    user: Any = dict(base or {})
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found")
        try:
            with path.open(encoding="utf-8") as f:
                user = yaml.safe_load(f)
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not valid YAML: {_one_line(e)}") from None
        if user is None:
            user = {}
        if not isinstance(user, dict):
            raise ConfigError(f"{path} must be a mapping of sections (env:, model:, rollout:, "
                              f"...), not {_kind(user)}")
    try:
        user = OmegaConf.merge(OmegaConf.create(_rename_import(user)),
                               OmegaConf.from_dotlist(_rename_import(list(overrides or []))))
        data = OmegaConf.to_container(user, resolve=True)
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad config or override: {_one_line(e)}") from None
    return config_from_dict(data)


def _kind(value: Any) -> str:
    kinds = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _rename_import(user: Any) -> Any:
    """YAML's ``env.import`` is the dataclass field ``env.imports`` (``import`` is a
    Python keyword); overrides may say ``env.import=[...]`` too."""
    if isinstance(user, list):
        return [o.replace("env.import=", "env.imports=", 1) if o.startswith("env.import=") else o
                for o in user]
    env = user.get("env") if isinstance(user, dict) else None
    if isinstance(env, dict) and "import" in env:
        if "imports" in env:
            raise ConfigError("env: give env.import or env.imports, not both")
        env = dict(env)
        value = env.pop("import")
        env["imports"] = [value] if isinstance(value, str) else value
        user = dict(user, env=env)
    return user


def config_from_dict(data: dict) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"a config is a mapping of sections, not {_kind(data)}")
    data = _rename_import(data)
    _check_shapes(data, Config, "")
    _check_keys(data, Config, "")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), data)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "config"
        message = str(e).split("\n")[0]
        raise ConfigError(f"{key}: {message}") from None
    except (TypeError, ValueError) as e:  # shapes omegaconf cannot merge at all
        raise ConfigError(f"config: {_one_line(e)}") from None
    assert isinstance(cfg, Config)
    _check_ranges(cfg)
    _check_choices(cfg)
    _check_algorithm(cfg.algorithm)
    _check_strategy(cfg.rollout)
    if cfg.rollout.tree.shared_steps == "merge" and cfg.trainer.samples != "per_step":
        raise ConfigError("rollout.tree.shared_steps=merge needs trainer.samples=per_step")
    if cfg.trainer.samples == "trajectory" and cfg.rollout.context != "conversation":
        raise ConfigError("trainer.samples=trajectory needs rollout.context=conversation "
                          "(prompts that extend each other)")
    return cfg


def _check_algorithm(algo: AlgorithmConfig) -> None:
    adv = algo.advantage
    if adv.options:
        from agentgym.credit import estimator_options  # credit imports this module

        for name, keys in adv.options.items():
            estimator_options(name, keys)   # raises ConfigError on a bad name or key
    if adv.episode_scope == "step" and adv.episode != "grpo":
        raise ConfigError("algorithm.advantage.episode_scope=step needs advantage.episode=grpo "
                          "(RLOO has no step-sample variant); use episode_scope=trajectory")
    if algo.reward.invalid_action_scope == "step" and adv.episode_scope != "step":
        raise ConfigError("algorithm.reward.invalid_action_scope=step scores each step sample, so it "
                          "needs algorithm.advantage.episode_scope=step (as verl-agent)")
    epo = algo.loss.epo
    if epo.kappa_high < epo.kappa_low:
        raise ConfigError("algorithm.loss.epo needs 0 <= kappa_low <= kappa_high, got "
                          f"{epo.kappa_low}, {epo.kappa_high}")


def _check_strategy(r: RolloutConfig) -> None:
    """Tree and branching budgets that cannot be met fail here, before any model loads."""
    t, a = r.tree, r.arpo
    if r.strategy == "tree_grpo" and (t.trees < 1 or t.rounds < 0 or t.expansions < 1):
        raise ConfigError("rollout.tree needs trees >= 1, rounds >= 0 and expansions >= 1, got "
                          f"{t.trees}, {t.rounds}, {t.expansions}")
    if r.strategy == "treepo" and not (1 <= t.width <= t.leaves and t.branch >= 2):
        raise ConfigError(f"rollout.tree needs 1 <= width <= leaves and branch >= 2, got width "
                          f"{t.width}, leaves {t.leaves}, branch {t.branch}")
    if r.strategy == "arpo":
        if not 1 <= a.initial <= a.budget:
            raise ConfigError(f"rollout.arpo.initial ({a.initial} chains) must be between 1 and "
                              f"rollout.arpo.budget ({a.budget} leaves per task)")
        if a.entropy_tokens < 1 or a.beam < 1:
            raise ConfigError("rollout.arpo needs entropy_tokens >= 1 and beam >= 1")
    if r.strategy != "chain" and r.backend != "hf":
        raise ConfigError(f"rollout.strategy={r.strategy} needs rollout.backend=hf")


def _check_shapes(user: Any, schema: type, path: str) -> None:
    """A section given as something other than a mapping (``env: 5``) is named."""
    hints = typing.get_type_hints(schema)
    for key, value in user.items():
        sub = _dataclass_in(hints.get(key))
        if sub is None:
            origin = typing.get_origin(hints.get(key))
            if origin is dict and not isinstance(value, dict):
                raise ConfigError(f"{path}{key} must be a mapping (key: value), got {value!r}")
            if origin is list and not isinstance(value, (list, str)):
                raise ConfigError(f"{path}{key} must be a list, got {value!r}")
            continue
        if isinstance(value, dict):
            _check_shapes(value, sub, f"{path}{key}.")
        elif value is not None or type(None) not in typing.get_args(hints[key]):
            raise ConfigError(f"{path}{key} must be a mapping of keys "
                              f"({', '.join(typing.get_type_hints(sub))}), got {value!r}")


def to_yaml(cfg: Config) -> str:
    """The config as YAML, with ``env.import`` spelt as in recipes."""
    data = OmegaConf.to_container(OmegaConf.structured(cfg))
    data["env"]["import"] = data["env"].pop("imports")
    return OmegaConf.to_yaml(OmegaConf.create(data))


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)
