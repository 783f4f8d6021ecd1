"""What an environment hands back, checked before anything else touches it.

A non-string observation, a NaN, infinite or non-numeric reward, a non-dict ``info``,
a ``step`` that does not return five values, or a ``SystemExit`` raised inside
``reset``/``step`` is the environment's fault: it becomes an :class:`EnvValueError`
(an ordinary ``Exception``), which the env pool turns into that one episode's
``env_error`` with the message below, while the run and every other episode go on.
``EpisodeGuard`` (``agentgym.contract``) applies these checks to every registered env.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any


class EnvValueError(Exception):
    """An environment returned (or did) something the contract does not allow."""


def call_env(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, with ``SystemExit`` from inside the env made an episode error."""
    try:
        return fn(*args, **kwargs)
    except SystemExit as e:
        raise EnvValueError(f"{what} called sys.exit({e.code!r})") from None


def checked_reset(result: Any) -> tuple[str, dict]:
    if not isinstance(result, tuple) or len(result) != 2:
        raise EnvValueError(f"reset must return (observation, info), got {_kind(result)}")
    obs, info = result
    return _observation("reset", obs), _info("reset", info)


def checked_step(result: Any) -> tuple[str, float, bool, bool, dict]:
    if not isinstance(result, tuple) or len(result) != 5:
        raise EnvValueError("step must return (observation, reward, terminated, truncated, "
                            f"info), got {_kind(result)}")
    obs, reward, terminated, truncated, info = result
    return (_observation("step", obs), _reward(reward), _flag("terminated", terminated),
            _flag("truncated", truncated), _info("step", info))


def _observation(where: str, obs: Any) -> str:
    if not isinstance(obs, str):
        raise EnvValueError(f"{where} returned a {type(obs).__name__} observation; "
                            "observations must be str")
    return obs


def _reward(reward: Any) -> float:
    if isinstance(reward, bool) or not isinstance(reward, numbers.Real):
        raise EnvValueError(f"step returned a {type(reward).__name__} reward ({reward!r:.80}); "
                            "rewards must be real numbers")
    value = float(reward)
    if not math.isfinite(value):
        raise EnvValueError(f"step returned a reward of {value}; rewards must be finite")
    return value


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":   # numpy.bool_ too
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    raise EnvValueError(f"step returned {name}={value!r:.80}; it must be a bool")


def _info(where: str, info: Any) -> dict:
    if not isinstance(info, dict):
        raise EnvValueError(f"{where} returned a {type(info).__name__} info; info must be a dict")
    return info


def _kind(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"a {type(value).__name__}"
