"""Episode filters as people type them (URL query, command line) -> store keywords."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from agentgym.errors import AgentGymError
from agentgym.store import ORDER_KEYS

# name as typed -> store keyword
FILTER_NAMES = {"iteration": "iteration", "split": "split", "outcome": "won",
                "task_type": "task_type", "termination": "termination", "error": "has_error",
                "env": "env_id", "group": "group_id", "task": "task_id"}
_TRUE, _FALSE = ("1", "true", "yes", "won"), ("0", "false", "no", "lost")


def parse_filters(values: Mapping[str, str]) -> dict[str, Any]:
    """``{"iteration": "3,4", "outcome": "lost", "error": "yes"}`` -> store filters.
    Empty values mean "any"; names not in ``FILTER_NAMES`` are ignored."""
    out: dict[str, Any] = {}
    for name, keyword in FILTER_NAMES.items():
        raw = (values.get(name) or "").strip()
        if not raw:
            continue
        if keyword == "iteration":
            try:
                items = [int(v) for v in raw.split(",") if v.strip()]
                if not items or any(abs(v) > 2**62 for v in items):   # SQLite ints are 64-bit
                    raise ValueError
            except ValueError:
                raise AgentGymError(f"iteration must be a number or a comma-separated list "
                                    f"of numbers, not {raw[:40]!r}") from None
            out[keyword] = items if len(items) > 1 else items[0]
        elif keyword in ("won", "has_error"):
            low = raw.lower()
            if low not in _TRUE + _FALSE:
                choices = "won or lost" if keyword == "won" else "yes or no"
                raise AgentGymError(f"{name} must be {choices}, not {raw!r}")
            out[keyword] = low in _TRUE
        else:
            out[keyword] = raw
    return out


def check_order(order: str) -> str:
    """An episode order (``-iteration,episode``) the store accepts, or one clear error."""
    if any(k.strip().lstrip("-") not in ORDER_KEYS for k in order.split(",")):
        raise AgentGymError(f"cannot order episodes by {order!r}: use comma-separated keys "
                            f"from {', '.join(sorted(ORDER_KEYS))}, '-' for descending, "
                            "e.g. -iteration,episode")
    return order


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("episode filters")
    g.add_argument("--iteration", help="iteration number, or a comma-separated list")
    g.add_argument("--split", help="train or eval")
    g.add_argument("--outcome", choices=["won", "lost"])
    g.add_argument("--task-type", dest="task_type")
    g.add_argument("--termination",
                   help="success, failure, max_steps, context, env_error or timeout")
    g.add_argument("--error", choices=["yes", "no"], help="episodes with (or without) an error")
    g.add_argument("--env", help="environment id")
    g.add_argument("--group", help="group id (episodes that started from the same task)")
    g.add_argument("--task", help="task id")


def filters_from_args(args: argparse.Namespace) -> dict[str, Any]:
    return parse_filters({name: getattr(args, name, None) for name in FILTER_NAMES})
