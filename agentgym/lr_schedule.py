"""Learning-rate schedule over optimizer steps, measured in (fractional) iterations.

An iteration may take several optimizer steps (``trainer.ppo_epochs`` x mini-batches),
and their number can vary from one iteration to the next (per-step samples). The
schedule is therefore a function of progress ``p`` in iterations: optimizer step j of
n within iteration k (1-based) is at ``p = k - 1 + j / n``, so a run always spans
``trainer.iterations`` of schedule, whatever its steps per iteration:

    warmup (W iterations):  f = (p + 1/n) / W                    while p < W
    cosine:                 f = (1 + cos(pi * (p - W) / (K - W))) / 2
    constant:               f = 1

With one step per iteration this is the classic per-iteration schedule.
"""

from __future__ import annotations

import math


class LRSchedule:
    def __init__(self, optimizer, *, iterations: int, warmup_iterations: int = 0,
                 kind: str = "cosine"):
        self.optimizer = optimizer
        self.iterations, self.warmup, self.kind = iterations, warmup_iterations, kind
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.steps = 0                   # optimizer steps taken, for the record

    def factor(self, progress: float, steps_in_iteration: int = 1) -> float:
        if self.warmup and progress < self.warmup:
            return min(1.0, (progress + 1.0 / steps_in_iteration) / self.warmup)
        if self.kind == "constant":
            return 1.0
        span = max(1, self.iterations - self.warmup)
        x = min(1.0, (progress - self.warmup) / span)
        return 0.5 * (1.0 + math.cos(math.pi * x))

    def set(self, iteration: int, step: int, steps_in_iteration: int) -> float:
        """Set the lr for optimizer step ``step`` (0-based) of ``iteration`` (1-based)."""
        f = self.factor(iteration - 1 + step / steps_in_iteration, steps_in_iteration)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f
        self.steps += 1
        return self.base_lrs[0] * f

    def state_dict(self) -> dict:
        return {"steps": self.steps, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state.get("steps", 0))
        self.base_lrs = list(state.get("base_lrs", self.base_lrs))
