"""Registering and making environments, on top of Gymnasium's registry.

``register`` puts the id in Gymnasium's registry with ``EpisodeGuard`` as its
wrapper, so ``gymnasium.make(id)`` and ``agentgym.make(id)`` give the same thing.
"""

from __future__ import annotations

import copy
import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium
from gymnasium.envs.registration import WrapperSpec, load_env_creator

from agentgym.errors import AgentGymError, UnknownEnvError

_GUARD_ENTRY = "agentgym.contract:EpisodeGuard"


@dataclass
class EnvInfo:
    """What ``agentgym envs`` lists about one registered environment."""

    id: str
    description: str
    max_episode_steps: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)


_registered: dict[str, EnvInfo] = {}


def register(
    id: str,
    entry_point: str | Callable[..., gymnasium.Env],
    kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    description: str = "",
    max_action_chars: int = 2_000,
) -> None:
    """Register a text environment.

    ``entry_point`` is ``"package.module:ClassName"`` or the class (any callable
    returning a ``gymnasium.Env``) itself. ``kwargs`` are the constructor defaults;
    ``make`` can override them. Registering an id again replaces it.
    """
    if not description and not isinstance(entry_point, str):
        description = (entry_point.__doc__ or "").strip().split("\n")[0]
    guard = WrapperSpec(
        name="EpisodeGuard",
        entry_point=_GUARD_ENTRY,
        kwargs={"max_episode_steps": max_episode_steps, "max_action_chars": max_action_chars},
    )
    if id in gymnasium.registry:
        del gymnasium.registry[id]
    gymnasium.register(
        id=id,
        entry_point=entry_point,
        kwargs=dict(kwargs or {}),
        max_episode_steps=None,  # EpisodeGuard truncates; TimeLimit would not stop later steps
        disable_env_checker=True,
        order_enforce=False,
        additional_wrappers=(guard,),
    )
    _registered[id] = EnvInfo(id, description, max_episode_steps, dict(kwargs or {}))


def registered_envs() -> list[EnvInfo]:
    """Every environment registered through agentgym, sorted by id."""
    return [_registered[k] for k in sorted(_registered)]


def env_info(id: str) -> EnvInfo:
    if id not in _registered:
        raise UnknownEnvError(_unknown_message(id))
    return _registered[id]


def _unknown_message(id: str) -> str:
    known = sorted(set(_registered) | set(gymnasium.registry))
    close = difflib.get_close_matches(id, known, n=3, cutoff=0.5)
    if not close:  # "textworld" should still find "agentgym/TextWorld-v0"
        close = [k for k in sorted(_registered) if id.lower() in k.lower()][:3]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (f"unknown environment id {id!r}.{hint} "
            f"Run `agentgym envs` to list the registered ids.")


def make(id: str, *, max_episode_steps: int | None = None, **kwargs: Any) -> gymnasium.Env:
    """Create a registered environment; ``kwargs`` override its registered defaults.

    ``max_episode_steps`` overrides the registered step limit.
    """
    if id not in gymnasium.registry:
        raise UnknownEnvError(_unknown_message(id))
    spec = gymnasium.registry[id]
    if max_episode_steps is not None:
        if id in _registered:
            spec = copy.deepcopy(spec)
            guard = spec.additional_wrappers[0]
            spec.additional_wrappers = (WrapperSpec(
                guard.name, guard.entry_point,
                dict(guard.kwargs, max_episode_steps=max_episode_steps)),)
        else:  # a plain Gymnasium environment
            kwargs["max_episode_steps"] = max_episode_steps
    try:
        return gymnasium.make(spec, **kwargs)
    except TypeError as e:
        if "unexpected keyword argument" not in str(e):
            raise
        raise AgentGymError(f"{id} does not take option {_bad_keyword(e)}. "
                            f"Its options: {_options(spec.entry_point)}") from None


def _bad_keyword(e: TypeError) -> str:
    text = str(e)
    start = text.find("argument '")
    return text[start + 10:text.find("'", start + 10)] if start >= 0 else text


def _options(entry_point) -> str:
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    params = [p for p in inspect.signature(creator).parameters if p not in ("self", "kwargs")]
    return ", ".join(params) or "none"
