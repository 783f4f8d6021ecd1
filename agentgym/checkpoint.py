"""Checkpoints: model weights, optimizer, scheduler and every RNG stream, atomically.

``RUN_DIR/checkpoints/iter_000010/`` holds ``model/`` (HF ``save_pretrained``: full
weights, or the LoRA adapter), ``optimizer.pt`` and ``state.pt`` (iteration, scheduler,
RNG states, and ``extra``: trainer state such as EPO's entropy history). A checkpoint is written to a temporary directory and renamed into place,
so a kill mid-write never leaves a half checkpoint that resume would pick up.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agentgym.errors import AgentGymError
from agentgym.rundir import filesystem_error

PREFIX = "iter_"


def checkpoint_dir(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"{PREFIX}{iteration:06d}"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    root = Path(run_dir) / "checkpoints"
    done = sorted(p for p in root.glob(f"{PREFIX}*") if (p / "state.pt").is_file()) \
        if root.is_dir() else []
    return done[-1] if done else None


def rng_state(task_rng: np.random.Generator, sampler=None) -> dict[str, Any]:
    """Every random stream a run draws from; ``sampler`` is the policy's own generator."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state(), "tasks": task_rng.bit_generator.state}
    if sampler is not None and hasattr(sampler, "get_rng_state"):
        state["sampler"] = sampler.get_rng_state()
    return state


def restore_rng(state: dict[str, Any], task_rng: np.random.Generator, sampler=None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    task_rng.bit_generator.state = state["tasks"]
    if sampler is not None and "sampler" in state and hasattr(sampler, "set_rng_state"):
        sampler.set_rng_state(state["sampler"])


def save_checkpoint(run_dir: str | Path, iteration: int, model, optimizer, scheduler,
                    task_rng: np.random.Generator, sampler=None,
                    extra: dict[str, Any] | None = None) -> Path:
    final = checkpoint_dir(run_dir, iteration)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        model.save_pretrained(tmp / "model")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save({"iteration": iteration,
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": rng_state(task_rng, sampler), "extra": extra or {}}, tmp / "state.pt")
    except Exception as exc:  # noqa: BLE001 - torch and safetensors report a full disk in their own types
        shutil.rmtree(tmp, ignore_errors=True)
        raise (filesystem_error(exc, "a checkpoint", final) or AgentGymError(
            f"could not write the checkpoint {final} ({exc}); check the free space and "
            "permissions of the run directory, then `agentgym train --resume RUN_DIR`")) from exc
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def load_checkpoint(path: str | Path, model, optimizer, scheduler,
                    task_rng: np.random.Generator, sampler=None) -> dict[str, Any]:
    """Load weights, optimizer, scheduler and RNG streams; returns the saved state."""
    path = Path(path)
    if not (path / "state.pt").is_file():
        raise AgentGymError(f"{path} is not a complete checkpoint (no state.pt)")
    load_weights(model, path / "model")
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    state = torch.load(path / "state.pt", weights_only=False)
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], task_rng, sampler)
    return state


def load_weights(model, model_dir: Path) -> None:
    """Copy saved weights into ``model`` in place (full model or LoRA adapter)."""
    from safetensors.torch import load_file

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise AgentGymError(f"no weights (*.safetensors) in {model_dir}")
    if (model_dir / "adapter_config.json").is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(files[0]))
        return
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(f))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # tied embeddings are saved once; anything else missing is a real mismatch
    missing = [k for k in missing if "lm_head" not in k]
    if missing or unexpected:
        raise AgentGymError(f"checkpoint {model_dir} does not match the model: "
                            f"missing {missing[:3]}, unexpected {unexpected[:3]}")
