"""``agentgym export RUN --merged-model OUT``: a run's latest checkpoint as a standalone
Hugging Face model directory (LoRA adapters merged into the base weights), loadable
with ``AutoModelForCausalLM.from_pretrained(OUT)`` and servable anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from agentgym.checkpoint import latest_checkpoint, load_weights
from agentgym.errors import AgentGymError


def merged_model(run_or_checkpoint: str | Path, out: str | Path) -> Path:
    """Write the merged model and its tokenizer to ``out`` (which must not exist yet)."""
    from agentgym.policy.models import load_model_and_tokenizer

    source = Path(run_or_checkpoint)
    checkpoint = source if (source / "model").is_dir() else latest_checkpoint(source)
    if checkpoint is None:
        raise AgentGymError(f"{source} has no checkpoint to merge (is it a run directory?)")
    run_dir = checkpoint.parent.parent
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise AgentGymError(f"{out} exists and is not empty; give a new directory")
    model_cfg = _model_config(run_dir)
    model, tokenizer = load_model_and_tokenizer(model_cfg.get("name", "smollm2-135m"),
                                                dtype=model_cfg.get("dtype", "float32"),
                                                device="cpu")
    weights = checkpoint / "model"
    if (weights / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, weights).merge_and_unload()
    else:
        load_weights(model, weights)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def _model_config(run_dir: Path) -> dict:
    path = run_dir / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise AgentGymError(f"cannot read the run's config {path}: {e}") from None
    return (config or {}).get("model") or {}
