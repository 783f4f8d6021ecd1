"""Which dtypes a run computes in: ``model.dtype`` resolved against the machine.

``auto`` (the default) keeps fp32 master weights and runs the update's forward and
backward under bf16 autocast where bf16 matmuls are native: CUDA GPUs, and CPUs with
AMX or AVX512-BF16 (there a bf16 matmul is several times faster than fp32; elsewhere
bf16 is emulated and slower, so the update stays fp32). Generation keeps the weights'
dtype (fp32 on CPU): decoding multiplies a few rows by every weight matrix, which is
memory-bound, and the CPU decode path has an fp32 fast kernel for narrow rows
(policy/hf.py), while autocast would re-cast every frozen weight at every token.

An explicit ``float32`` / ``bfloat16`` / ``float16`` loads the weights in that dtype and
trains in it without autocast (the behaviour before ``auto``).
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


@dataclass(frozen=True)
class Precision:
    weights: torch.dtype                 # what the model is loaded in (master weights)
    update_autocast: torch.dtype | None  # autocast dtype of the update's forward/backward
    reason: str

    def describe(self) -> str:
        update = "bf16 autocast" if self.update_autocast is not None else str(self.weights).removeprefix("torch.")
        return (f"precision: weights {str(self.weights).removeprefix('torch.')}, update {update}, "
                f"generation {str(self.weights).removeprefix('torch.')} ({self.reason})")


def resolve_precision(dtype: str, device: str = "cpu", flags: set[str] | None = None) -> Precision:
    from agentgym.policy.models import resolve_device

    device = resolve_device(device)
    if dtype != "auto":
        from agentgym.policy.models import resolve_dtype

        return Precision(resolve_dtype(dtype), None, f"model.dtype={dtype}")
    if native_bf16(device, flags):
        where = "GPU" if device.startswith("cuda") else "CPU has AMX/AVX512-BF16"
        return Precision(torch.float32, torch.bfloat16, f"model.dtype=auto: {where}")
    return Precision(torch.float32, None, "model.dtype=auto: no native bf16 here, fp32")
