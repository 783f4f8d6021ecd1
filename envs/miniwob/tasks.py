"""The MiniWoB++ task names that ship with the ``miniwob`` package, and suites of them.

A *suite* is given as a comma-separated list of items; each item is a task name
(``click-test``), a shell pattern (``click-*``), or a named suite (``suite:simple``).
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache

from agentgym.errors import ConfigError

#: Named suites. ``simple`` is what the scripted solver handles.
SUITES: dict[str, tuple[str, ...]] = {
    "simple": ("click-test", "click-button", "enter-text"),
    # single-screen tasks that a few clicks or one typed field solve
    "easy": ("click-test", "click-test-2", "click-button", "click-link", "click-dialog",
             "click-dialog-2", "click-checkboxes", "click-option", "focus-text",
             "focus-text-2", "enter-text", "enter-text-2", "enter-password",
             "login-user", "click-button-sequence", "click-tab", "click-widget"),
}


class MiniWoBTaskError(ConfigError, ValueError):
    """A task or suite name that names no MiniWoB++ task."""


@lru_cache(maxsize=1)
def all_tasks() -> tuple[str, ...]:
    """Every task shipped with the installed ``miniwob`` package (128 in miniwob 1.1)."""
    import gymnasium
    import miniwob  # noqa: F401  (registers the miniwob/ ids)
    from gymnasium.envs.registration import load_env_creator

    names = []
    for env_id, spec in gymnasium.registry.items():
        if env_id.startswith("miniwob/"):
            names.append(load_env_creator(spec.entry_point).subdomain)
    return tuple(sorted(names))


def resolve(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """The task names a suite spec selects, in a stable order without duplicates."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [str(i).strip() for i in items if str(i).strip()]
    if not items:
        raise MiniWoBTaskError("no MiniWoB task given: use a task name such as "
                               "task=click-test, a pattern such as task='click-*', "
                               f"or a suite: {_suite_names()}")
    known = all_tasks()
    out: list[str] = []
    for item in items:
        if item.startswith("suite:"):
            if item[6:] not in SUITES:
                raise MiniWoBTaskError(f"unknown MiniWoB suite {item!r}; suites: "
                                       f"{_suite_names()}")
            matched = list(SUITES[item[6:]])
        elif any(ch in item for ch in "*?["):
            matched = fnmatch.filter(known, item)
            if not matched:
                raise MiniWoBTaskError(f"pattern {item!r} matches no MiniWoB task")
        else:
            name = item.removeprefix("miniwob/").removesuffix("-v1")
            if name not in known:
                close = fnmatch.filter(known, f"*{name}*")[:5]
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise MiniWoBTaskError(f"unknown MiniWoB task {item!r}.{hint}")
            matched = [name]
        out += [m for m in matched if m not in out]
    return out


def _suite_names() -> str:
    return ", ".join(f"suite:{name}" for name in SUITES)
