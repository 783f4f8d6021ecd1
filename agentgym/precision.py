"""Which dtypes a run computes in: ``model.dtype`` resolved against the machine.

``auto`` (the default) runs the update's forward and backward under bf16 autocast where
bf16 matmuls are native: CUDA GPUs, and CPUs with AMX or AVX512-BF16 (there a bf16
matmul is several times faster than fp32; elsewhere bf16 is emulated and slower, so
everything stays fp32). What is stored depends on what is trained:

  LoRA        the frozen base weights are loaded in bf16 and the adapters are fp32
              master weights. The policy *is* the bf16 base plus the adapters, so
              generation runs in bf16 from the very tensors the update reads (no copy
              to sync), autocast has no frozen weight to re-cast at every call, and the
              base takes half the memory. Measured here: bf16 generation 1.46x the fp32
              tokens/s (tools/bench_generation.py).
  full FT     fp32 master weights; the update autocasts to bf16 and generation samples
              from the fp32 weights (a bf16 copy synced after each update is not built).

The update computes the lm head in fp32 in every case (update.py: log-prob ratios
need the precision). An explicit ``float32`` / ``bfloat16`` / ``float16`` loads all
weights in that dtype and trains in it without autocast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags (``/proc/cpuinfo``'s ``flags`` line); empty if unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: str = "cpu", flags: set[str] | None = None) -> bool:
    """True where bf16 matmuls run in hardware: CUDA, or a CPU with AMX/AVX512-BF16."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_CPU_FLAGS)


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class Precision:
    weights: torch.dtype                 # what the model is loaded in (LoRA: the frozen base)
    update_autocast: torch.dtype | None  # autocast dtype of the update's forward/backward
    reason: str
    adapters: torch.dtype | None = None  # LoRA adapters' dtype (fp32 master weights)

    def describe(self) -> str:
        weights = _name(self.weights)
        if self.adapters is not None:
            weights = f"{weights} frozen base + {_name(self.adapters)} LoRA adapters"
        update = "bf16 autocast" if self.update_autocast is not None else _name(self.weights)
        return f"precision: weights {weights}, update {update}, generation {_name(self.weights)} ({self.reason})"


def resolve_precision(dtype: str, device: str = "cpu", flags: set[str] | None = None,
                      lora: bool = False) -> Precision:
    from agentgym.policy.models import resolve_device

    device = resolve_device(device)
    adapters = torch.float32 if lora else None
    if dtype != "auto":
        from agentgym.policy.models import resolve_dtype

        return Precision(resolve_dtype(dtype), None, f"model.dtype={dtype}", adapters)
    if native_bf16(device, flags):
        where = "GPU" if device.startswith("cuda") else "CPU has AMX/AVX512-BF16"
        if lora:
            return Precision(torch.bfloat16, torch.bfloat16, f"model.dtype=auto: {where}, LoRA", adapters)
        return Precision(torch.float32, torch.bfloat16, f"model.dtype=auto: {where}")
    return Precision(torch.float32, None, "model.dtype=auto: no native bf16 here, fp32", adapters)


def model_precision(model) -> Precision:
    """The precision of a ``model:`` config section (its dtype, device and LoRA)."""
    return resolve_precision(model.dtype, model.device, lora=model.lora is not None)
