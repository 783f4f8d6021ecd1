"""Registering and making environments, on top of Gymnasium's registry.

``register`` puts the id in Gymnasium's registry with ``EpisodeGuard`` as its
wrapper, so ``gymnasium.make(id)`` and ``agentgym.make(id)`` give the same thing.

Ids may name the module that registers them, as Gymnasium has it:
``"my_package.envs:Guess-v0"`` imports ``my_package.envs`` first. Installed packages
register theirs through the ``agentgym.envs`` entry-point group (see
:func:`load_plugins`), loaded when agentgym is imported.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import importlib.metadata
import inspect
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import gymnasium
from gymnasium.envs.registration import WrapperSpec, load_env_creator

from agentgym.errors import AgentGymError, UnknownEnvError
from agentgym.install import MissingDependencyError, needs_message

PLUGIN_GROUP = "agentgym.envs"

_GUARD_ENTRY = "agentgym.contract:EpisodeGuard"


@dataclass
class EnvInfo:
    """What ``agentgym envs`` lists about one registered environment."""

    id: str
    description: str
    max_episode_steps: int | None
    kwargs: dict[str, Any] = field(default_factory=dict)
    modules: tuple[str, ...] = ()       # optional Python packages it needs
    extra: str | None = None            # the agentgym extra that installs them
    programs: tuple[str, ...] = ()      # system programs it needs ("a|b": either)

    def missing(self) -> str | None:
        """One line naming what this environment lacks here and how to install it."""
        return needs_message(self.id, self.modules, self.extra, self.programs)


_registered: dict[str, EnvInfo] = {}


def register(
    id: str,
    entry_point: str | Callable[..., gymnasium.Env],
    kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    description: str = "",
    max_action_chars: int = 2_000,
    requires: Iterable[str] = (),
    extra: str | None = None,
    programs: Iterable[str] = (),
) -> None:
    """Register a text environment.

    ``entry_point`` is ``"package.module:ClassName"`` or the class (any callable
    returning a ``gymnasium.Env``) itself. ``kwargs`` are the constructor defaults;
    ``make`` can override them. Registering an id again replaces it.
    ``requires`` (importable module names, installed by agentgym's ``extra``) and
    ``programs`` (system programs, ``"a|b"`` for either) say what the environment needs
    beyond agentgym; ``agentgym envs`` and ``agentgym validate`` check them.
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
    _registered[id] = EnvInfo(id, description, max_episode_steps, dict(kwargs or {}),
                              tuple(requires), extra, tuple(programs))


def registered_envs() -> list[EnvInfo]:
    """Every environment registered through agentgym, sorted by id."""
    return [_registered[k] for k in sorted(_registered)]


def env_info(id: str) -> EnvInfo:
    id = resolve_id(id)
    if id not in _registered:
        raise UnknownEnvError(_unknown_message(id))
    return _registered[id]


def import_modules(modules: Iterable[str], what: str = "env.import") -> None:
    """Import the modules that register environments (``env.import`` of a config)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any failure of user code is reported in one line
            raise AgentGymError(f"{what}: importing {name!r} failed: "
                                f"{type(e).__name__}: {e}") from None


def resolve_id(id: str) -> str:
    """``"pkg.mod:Name-v0"`` -> imports ``pkg.mod``, returns ``"Name-v0"``; others unchanged."""
    module, sep, name = id.rpartition(":")
    if not sep:
        return id
    import_modules([module], what=f"environment {id!r}")
    return name


def load_plugins() -> None:
    """Load every installed ``agentgym.envs`` entry point: a module (importing it
    registers its environments) or a callable (called with no arguments). A broken
    plugin costs one warning line on stderr, never the import of agentgym."""
    try:
        entry_points = importlib.metadata.entry_points(group=PLUGIN_GROUP)
    except Exception as e:  # noqa: BLE001 - broken metadata of some installed package
        print(f"agentgym: warning: could not read {PLUGIN_GROUP} entry points: {e}", file=sys.stderr)
        return
    for ep in entry_points:
        try:
            target = ep.load()
            if callable(target):
                target()
        except Exception as e:  # noqa: BLE001 - a plugin's bug is not agentgym's crash
            dist = getattr(ep.dist, "name", None) or "?"
            print(f"agentgym: warning: environment plugin {ep.name!r} ({ep.value}, from {dist}) "
                  f"failed to load: {type(e).__name__}: {e}", file=sys.stderr)


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
    id = resolve_id(id)
    if id not in gymnasium.registry:
        raise UnknownEnvError(_unknown_message(id))
    spec = gymnasium.registry[id]
    if id in _registered and _registered[id].modules:
        lacking = needs_message(id, _registered[id].modules, _registered[id].extra)
        if lacking:
            raise MissingDependencyError(lacking)
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
    except ModuleNotFoundError as e:  # an optional dependency the registration did not declare
        raise MissingDependencyError(f"{id} could not be made: {e}; install the package that "
                                     "provides it") from None


def check_options(id: str, options: dict[str, Any], path: str = "env.kwargs") -> None:
    """Raise one line for an option the environment's constructor does not take,
    without building the environment (the entry point's module is imported)."""
    id = resolve_id(id)
    spec = gymnasium.registry[id]
    try:
        creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) \
            else spec.entry_point
        params = inspect.signature(creator).parameters
    except ModuleNotFoundError as e:
        info = _registered.get(id)
        raise MissingDependencyError((info and info.missing()) or
                                     f"{id} cannot be loaded: {e}") from None
    except (ValueError, TypeError):  # no signature to check against
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    names = [n for n, p in params.items() if n != "self"
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in options:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise AgentGymError(f"{path}.{key}: {id} does not take option {key!r}.{hint} "
                                f"Its options: {', '.join(names) or 'none'}")


def _bad_keyword(e: TypeError) -> str:
    text = str(e)
    start = text.find("argument '")
    return text[start + 10:text.find("'", start + 10)] if start >= 0 else text


def _options(entry_point) -> str:
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    params = [p for p in inspect.signature(creator).parameters if p not in ("self", "kwargs")]
    return ", ".join(params) or "none"
