"""The 30 ScienceWorld task types, read from the ``scienceworld`` package without starting
its JVM, and suites of them.

A task spec is a comma-separated list of items; each item is a task name (``boil``), the
paper's id or title (``1-1``, ``Matter Changes of State (Boiling)``), a shell pattern
(``find-*``) or a named suite (``suite:easy``, ``suite:matter``). Names come back in the
order given, each once.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from functools import lru_cache

from agentgym.errors import ConfigError

#: The named suites besides ``suite:all`` and one per topic (``suite:matter``, ...),
#: chosen by the length of the engine's gold action sequences (measured on the first two
#: train and the first test variation of every task; tools/scienceworld_gold.py):
#: ``easy``: at most 16 steps (the other tasks need 18 to 190); ``short``: at most 9.
SUITES: dict[str, tuple[str, ...]] = {
    "easy": ("find-living-thing", "find-non-living-thing", "find-plant", "find-animal",
             "chemistry-mix-paint-secondary-color", "lifespan-longest-lived",
             "lifespan-shortest-lived", "lifespan-longest-lived-then-shortest-lived",
             "identify-life-stages-2", "power-component"),
    "short": ("find-non-living-thing", "lifespan-longest-lived", "lifespan-shortest-lived",
              "lifespan-longest-lived-then-shortest-lived"),
}


class ScienceWorldTaskError(ConfigError, ValueError):
    """A task, suite or split name that ScienceWorld does not have."""


@lru_cache(maxsize=1)
def catalogue() -> tuple[dict, ...]:
    """The package's task table: task_id ("1-1"), topic, task (title), task_name."""
    try:
        from scienceworld.constants import TASK_PATH
    except ImportError:
        raise ScienceWorldTaskError(
            "ScienceWorld needs the scienceworld package: pip install -e '.[scienceworld]' "
            "(and a Java runtime: sudo apt-get install -y default-jre-headless)") from None
    with open(TASK_PATH, encoding="utf-8") as f:
        return tuple(json.load(f))


def all_tasks() -> tuple[str, ...]:
    """The 30 task names in the paper's order (1-1 boil ... 10-2)."""
    return tuple(t["task_name"] for t in catalogue())


def topic_of(task: str) -> str:
    return next(t["topic"] for t in catalogue() if t["task_name"] == task)


def suites() -> dict[str, tuple[str, ...]]:
    """Every suite: ``all``, one per topic (lower case), and ``SUITES``."""
    out: dict[str, tuple[str, ...]] = {"all": all_tasks()}
    for t in catalogue():
        key = t["topic"].lower()
        out[key] = out.get(key, ()) + (t["task_name"],)
    out.update(SUITES)
    return out


def _by_alias(item: str) -> str | None:
    from scienceworld.utils import infer_task  # ids, paper titles, "task-1-..." forms

    name = infer_task(item)
    return name if name in all_tasks() else None


def resolve(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """The task names a spec selects, in a stable order without duplicates."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [str(i).strip() for i in items if str(i).strip()]
    named = suites()
    if not items:
        raise ScienceWorldTaskError("no ScienceWorld task given: use a task name such as "
                                    "task=boil, a pattern such as task='find-*', or a suite: "
                                    + _suite_names(named))
    out: list[str] = []
    for item in items:
        if item.startswith("suite:"):
            if item[6:] not in named:
                raise ScienceWorldTaskError(f"unknown ScienceWorld suite {item!r}; suites: "
                                            + _suite_names(named))
            matched = list(named[item[6:]])
        elif any(ch in item for ch in "*?["):
            matched = [t for t in all_tasks() if fnmatch.fnmatchcase(t, item)]
            if not matched:
                raise ScienceWorldTaskError(f"pattern {item!r} matches no ScienceWorld task")
        else:
            name = _by_alias(item)
            if name is None:
                close = difflib.get_close_matches(item.lower(), all_tasks(), n=3, cutoff=0.6)
                hint = f" Did you mean {', '.join(close)}?" if close else \
                    " `agentgym envs` lists the environments; docs/scienceworld.md the tasks."
                raise ScienceWorldTaskError(f"unknown ScienceWorld task {item!r}.{hint}")
            matched = [name]
        out += [m for m in matched if m not in out]
    return out


def _suite_names(named: dict) -> str:
    return ", ".join(f"suite:{name}" for name in named)
