"""``agentgym/ScienceWorld-v0``: the 30 ScienceWorld task types on the real simulator.

One environment plays one task type or a suite of them (``task="boil"``,
``task="find-*"``, ``task="suite:easy"``, ``task="boil,melt"``) on the official variations
of one split (``train``, ``dev`` or ``test``: the engine's 50/25/25 % split of each task's
variations). ``reset(seed=s)`` plays task ``s % T`` (T tasks) in variation
``split[(s // T) % n]``, so consecutive seeds cycle through the task types;
``options={"task": name, "variation": v}`` picks one.

The observation is the engine's text: the room (``look around``) and the inventory at
reset, the engine's answer after each step. ``info["task"]`` is the task description;
``info["admissible_actions"]`` a bounded selection of the engine's valid actions (see
``actions``); ``info["score"]`` the engine's score (0-100, negative on failure). The
reward is the score's increment divided by 100 (with the score clamped to [0, 100], so
an episode's rewards add up to its final score / 100, and to 0 when the task failed);
``won`` at a score of 100, ``lost`` when the engine ends the task without that (a wrong
``focus on``, a killed plant, ...). ``anchor`` is ``task:variation|room|digest`` of the
room and inventory text (``|choose`` added while an ambiguous request waits).

The JVM starts on the first ``reset``, is reused across episodes and tasks, and is
stopped by ``close()`` (also at garbage collection and when the process dies).
"""

from __future__ import annotations

import hashlib
import weakref
from typing import Any

import gymnasium

from agentgym.envs.scienceworld import actions as _actions
from agentgym.envs.scienceworld import tasks as _tasks
from agentgym.spaces import TextSpace

SPLITS = ("train", "dev", "test")
SPLIT_ALIASES = {"valid": "dev", "validation": "dev", "eval": "test"}
SIMPLIFICATIONS = ("teleportAction", "selfWateringFlowerPots", "openContainers", "openDoors",
                   "noElectricalAction")
UNKNOWN_ACTION = ("No known action matches that input.", "Unknown action.")
AMBIGUOUS = "Ambiguous request"
DEFAULT_MAX_ACTIONS = 100

_splits_cache: dict[str, dict[str, list[int]]] = {}  # task -> split -> variations, per process


def _stop_engine(holder: dict) -> None:
    engine = holder.pop("engine", None)
    if engine is not None:
        engine.close()


def _room(look: str) -> str:
    first = look.split(".", 1)[0]
    return first.removeprefix("This room is called the ").strip() or "?"


class ScienceWorldEnv(gymnasium.Env):
    """ScienceWorld's 30 science task types on the real simulator (a JVM per environment)."""

    # each environment drives its own JVM; worker processes keep Python-side work parallel
    metadata = {"render_modes": ["ansi"], "agentgym.pool": "process"}

    def __init__(self, task: str | list[str] = "suite:all", split: str = "train",
                 simplifications: str = "", max_variations: int | None = None,
                 max_actions: int | None = DEFAULT_MAX_ACTIONS, list_actions: bool = True,
                 render_mode: str | None = None):
        from agentgym.envs.scienceworld.engine import find_java

        error = _tasks.ScienceWorldTaskError
        self.tasks = _tasks.resolve(task)
        split = SPLIT_ALIASES.get(split, split)
        if split not in SPLITS:
            raise error(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.simplifications = self._check_simplifications(simplifications)
        for name, value in (("max_variations", max_variations), ("max_actions", max_actions)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise error(f"{name} must be a positive integer or null, got {value!r}")
        if render_mode not in (None, "ansi"):
            raise error(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self._java = find_java()  # fails here, with what to install, rather than at reset
        self.split = split
        self.max_variations = max_variations
        self.max_actions = max_actions
        self.list_actions = bool(list_actions)
        self.render_mode = render_mode
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        # the engine lives in a dict so the finalizer does not keep ``self`` alive
        self._holder: dict[str, Any] = {}
        self._finalizer = weakref.finalize(self, _stop_engine, self._holder)
        self.task: str | None = None
        self.variation: int | None = None
        self.task_id: str | None = None
        self._description = ""
        self._obs = ""
        self._info: dict[str, Any] = {}
        self._score = 0
        self._done = False
        self._choosing = False          # the engine waits for the number of an ambiguous request
        self._history: list[str] = []   # actions sent to the engine since reset
        self._gold: dict[tuple, list[str]] = {}

    # ----------------------------------------------------------------- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"task", "variation"})
        if unknown:
            raise _tasks.ScienceWorldTaskError(
                f"unknown reset option(s) {', '.join(unknown)}; ScienceWorld accepts task, variation")
        if seed is None:
            seed = int(self.np_random.integers(2**31))
        seed = int(seed)
        task = _tasks.resolve(options["task"])[0] if options.get("task") is not None \
            else self.tasks[seed % len(self.tasks)]
        engine = self._engine()
        if options.get("variation") is not None:
            variation = self._check_variation(engine, task, options["variation"])
        else:
            variations = self.variations(task)
            variation = variations[(seed // len(self.tasks)) % len(variations)]
        engine.load(task, variation, self.simplifications)
        self.task, self.variation, self.task_id = task, variation, f"{task}:{variation}"
        self._description = engine.task_description().strip()
        self._score, self._done, self._choosing = 0, False, False
        self._history = []
        self._obs = f"{engine.look().strip()}\n{engine.inventory().strip()}"
        self._info = self._make_info(engine, action_valid=True)
        return self._obs, dict(self._info)

    def step(self, action: str):
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        if self._done:  # only reachable without EpisodeGuard
            return self._obs, 0.0, True, False, dict(self._info, action_valid=False)
        text = " ".join(action.split())
        if text.lower() in _actions.REFUSED:
            return self._obs, 0.0, False, False, dict(
                self._info, action_valid=False,
                invalid_reason=f"{text!r} is not available here: reset() starts a task again")
        engine = self._holder["engine"]
        obs, score, completed = engine.step(text)
        self._history.append(text)
        valid = not obs.startswith(UNKNOWN_ACTION)
        self._choosing = obs.startswith(AMBIGUOUS)
        score100 = round(100 * score)
        won = score100 >= 100
        lost = not won and (completed or score100 < 0)
        reward = (min(max(score100, 0), 100) - min(max(self._score, 0), 100)) / 100
        self._score = score100
        self._done = won or lost
        self._obs = obs.strip()
        self._info = self._make_info(engine, action_valid=valid)
        extra = {} if valid else {"invalid_reason": "the engine knows no such action"}
        return self._obs, reward, self._done, False, dict(self._info, **extra)

    def render(self):
        return self._obs

    def close(self):
        self._finalizer()
        super().close()

    # ----------------------------------------------------------------- extras

    def walkthrough(self) -> list[str] | None:
        """The engine's gold action sequence for the current task and variation (None
        before reset). The engine plans it by playing the task once (0.1 s to half a minute),
        which resets the simulator; the actions of this episode so far are replayed after."""
        if self.task is None:
            return None
        key = (self.task, self.variation, self.simplifications)
        if key not in self._gold:
            engine = self._holder["engine"]
            engine.load(self.task, self.variation, self.simplifications, gold=True)
            self._gold[key] = engine.gold_actions()
            engine.load(self.task, self.variation, self.simplifications)
            for action in self._history:
                engine.step(action)
        return list(self._gold[key])

    def variations(self, task: str) -> list[int]:
        """The variations of ``task`` this environment plays: its split's, the first
        ``max_variations`` of them when that is set."""
        if task not in _splits_cache:
            _splits_cache[task] = self._engine().splits(task)
        variations = _splits_cache[task][self.split]
        if not variations:
            raise _tasks.ScienceWorldTaskError(f"ScienceWorld task {task} has no {self.split} "
                                               "variations")
        return variations[:self.max_variations] if self.max_variations else variations

    @property
    def score(self) -> int:
        """The engine's score of the current episode, 0-100 (negative when failed)."""
        return self._score

    # ----------------------------------------------------------------- internals

    def _engine(self):
        from agentgym.envs.scienceworld.engine import Engine

        engine = self._holder.get("engine")
        if engine is not None and not engine.alive():
            self._stop_engine()
            engine = None
        if engine is None:
            engine = self._holder["engine"] = Engine(self._java)
        return engine

    def _stop_engine(self) -> None:
        _stop_engine(self._holder)

    @staticmethod
    def _check_simplifications(value: str) -> str:
        items = [s.strip() for s in str(value or "").split(",") if s.strip()]
        bad = [s for s in items if s not in SIMPLIFICATIONS + ("easy",)]
        if bad:
            raise _tasks.ScienceWorldTaskError(
                f"unknown ScienceWorld simplification(s) {', '.join(bad)}; use 'easy' or a "
                f"comma list of {', '.join(SIMPLIFICATIONS)}")
        return ",".join(items)

    @staticmethod
    def _check_variation(engine, task: str, variation: Any) -> int:
        count = engine.max_variations(task)
        if isinstance(variation, bool) or not isinstance(variation, int) or \
                not 0 <= variation < count:
            raise _tasks.ScienceWorldTaskError(
                f"variation must be an integer in [0, {count}) for {task}, got {variation!r}")
        return variation

    def _make_info(self, engine, action_valid: bool) -> dict[str, Any]:
        look, inventory = engine.look(), engine.inventory()
        digest = hashlib.sha1(f"{look}\n{inventory}".encode()).hexdigest()[:16]
        anchor = f"{self.task_id}|{_room(look)}|{digest}" + ("|choose" if self._choosing else "")
        info = {
            "task_id": self.task_id,
            "task": self._description,
            "task_type": self.task,
            "variation": self.variation,
            "won": self._score >= 100,
            "lost": self._done and self._score < 100,
            "action_valid": bool(action_valid),
            "anchor": anchor,
            "score": self._score,
        }
        if self.list_actions:
            info["admissible_actions"] = [] if self._done else \
                _actions.select(engine.valid_actions(), self.max_actions)
        return info
