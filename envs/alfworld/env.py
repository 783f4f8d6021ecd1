"""``agentgym/ALFWorld-v0``: ALFWorld's household tasks on the alfworld/textworld engine.

Games come from a generated suite (``agentgym.envs.alfworld.suite``; game ``i`` of a
split is made and proved solvable on first use, then cached) or, when ``data_dir`` or
``$ALFWORLD_DATA`` points at the official data (a folder holding ``json_2.1.1``), from
``json_2.1.1/<split>``.
``reset(seed=s)`` plays game ``s % num_games`` (``options={"game_index": i}`` picks one).

Observations are the engine's text (the intro without its "Welcome to TextWorld" banner
at reset, the feedback after each step); ``info`` has the admissible commands, ``won``,
``task`` (the task sentence), ``task_type`` and ``anchor``: by default the observation
text (what GiGPO groups steps on), with ``anchor="state"`` the sorted symbolic facts.
A command is matched case- and whitespace-insensitively against the admissible ones;
any other command answers "Nothing happens." and is marked invalid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium
from agentgym.envs.alfworld import suite as _suite

from agentgym.envs._cache import pick_game
from agentgym.errors import ConfigError
from agentgym.spaces import TextSpace

ANCHORS = ("observation", "state")
_BANNER = "-= Welcome to TextWorld, ALFRED! =-"


class ALFWorldConfigError(ConfigError, ValueError):
    """A constructor argument or reset option ALFWorld cannot use."""


def _normalize(command: str) -> str:
    return " ".join(command.lower().split())


class ALFWorldEnv(gymnasium.Env):
    """ALFWorld household tasks (six task types) on the real alfworld/textworld engine."""

    # CPU-bound in Python: EnvPool(backend="auto") runs it in worker processes
    metadata = {"render_modes": ["ansi", "human"], "agentgym.pool": "process"}

    def __init__(self, split: str = "train", num_games: int | None = None,
                 data_dir: str | None = None, cache_dir: str | None = None,
                 anchor: str = "observation", render_mode: str | None = None):
        try:
            self.split = _suite.canonical_split(split)
        except _suite.SuiteError as exc:
            raise ALFWorldConfigError(str(exc)) from None
        if anchor not in ANCHORS:
            raise ALFWorldConfigError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ALFWorldConfigError(f"render_mode must be None, 'ansi' or 'human', got {render_mode!r}")
        if num_games is not None and (isinstance(num_games, bool) or not isinstance(num_games, int)
                                      or num_games < 1):
            raise ALFWorldConfigError(f"num_games must be a positive integer, got {num_games!r}")
        if data_dir is None:
            # alfworld sets $ALFWORLD_DATA to its own cache folder when imported, data or
            # not: the variable counts only where the official data is actually there.
            from_env = os.environ.get("ALFWORLD_DATA")
            if from_env and ((Path(from_env) / _suite.OFFICIAL_ROOT).is_dir()
                             or (Path(from_env) / _suite.SPLIT_DIRS[self.split]).is_dir()):
                data_dir = from_env
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.anchor_mode = anchor
        self.render_mode = render_mode
        self._official: list[_suite.Game] | None = None
        if data_dir:
            try:
                self._official = _suite.official_games(data_dir, self.split)
            except _suite.SuiteError as exc:
                raise ALFWorldConfigError(str(exc)) from None
            total = len(self._official)
            self.num_games = total if num_games is None else min(num_games, total)
        else:
            self.num_games = num_games if num_games is not None else _suite.DEFAULT_SIZES[self.split]

        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self._engine = None
        self._game: _suite.Game | None = None
        self._game_data: dict | None = None
        self.game_index: int | None = None
        self._state = None
        self._obs = ""
        self._info: dict[str, Any] = {}
        self._admissible: dict[str, str] = {}
        self._done = False
        self._task_text = ""

    # ----------------------------------------------------------------- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        index = pick_game(seed, dict(options or {}), self.num_games, self.np_random,
                          ALFWorldConfigError, "ALFWorld")
        self.game_index = index
        game = self._official[index] if self._official is not None \
            else _suite.ensure_game(self.split, index, self.cache_dir)
        if self._engine is None:
            from agentgym.envs.alfworld.engine import FastPddlEnv

            base = self.cache_dir if self.cache_dir is not None else _suite.default_cache_dir()
            self._engine = FastPddlEnv(sas_cache_dir=str(Path(base).expanduser() / "sas"))
        if self._game is None or self._game.path != game.path:
            self._game_data = game.load()
            self._engine.load(self._game_data)
        self._game = game
        self._state = self._engine.reset()
        self._done = False
        self._task_text = self._task_sentence()
        feedback = self._state["feedback"]
        feedback = feedback.removeprefix(_BANNER)
        self._obs = feedback.strip()
        self._info = self._make_info(action_valid=True)
        return self._obs, dict(self._info)

    def step(self, action: str):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if self._done:  # only reachable without EpisodeGuard
            return self._obs, 0.0, True, False, dict(self._info, action_valid=False)
        command = self._admissible.get(_normalize(action))
        if command is None:
            # what the engine answers to any command it does not know; the state is unchanged
            self._obs = "Nothing happens."
            self._info = dict(self._info, action_valid=False, anchor=self._anchor())
            return self._obs, 0.0, False, False, dict(self._info)
        self._state, _, _ = self._engine.step(command)
        won = bool(self._state["won"])
        self._done = won
        self._obs = self._state["feedback"].strip() or "Nothing happens."
        self._info = self._make_info(action_valid=True)
        return self._obs, 1.0 if won else 0.0, won, False, dict(self._info)

    def render(self):
        if self.render_mode == "human":
            print(self._obs)
            return None
        return self._obs

    def close(self):
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._state = None
        super().close()

    # ----------------------------------------------------------------- extras

    def walkthrough(self) -> list[str] | None:
        """Commands that win the current game from its initial state (None before reset).

        Generated games store the expert's plan, proved when the game was made; for an
        official game without one, the expert plans from the initial facts.
        """
        if self._game_data is None or self._game is None:
            return None
        stored = self._game_data.get("walkthrough")
        if stored:
            return list(stored)
        return self.expert_plan(initial=True)

    def expert_plan(self, initial: bool = False) -> list[str]:
        """The planner expert's commands from the initial state (``initial``) or, via
        Fast Downward, from the current one."""
        import json

        if initial:
            from agentgym.envs.alfworld import expert

            with open(self._game.path.parent / "traj_data.json", encoding="utf-8") as f:
                traj = json.load(f)
            p = traj["pddl_params"]
            probe = type(self._engine)()
            try:
                probe.load(self._game_data)
                state = probe.reset()
                return expert.plan(traj["task_type"], p["object_target"], p["parent_target"],
                                   p["toggle_target"], state["_facts"], probe.names())
            finally:
                probe.close()
        return self._engine.plan()

    @property
    def task(self) -> str | None:
        """The current game's task sentence (None before reset)."""
        return self._task_text or None

    def state_facts(self) -> list[str]:
        """Sorted symbolic facts of the current state (the ``anchor="state"`` key)."""
        if self._state is None:
            return []
        return sorted(f"{p.name}({','.join(v.name for v in p.arguments)})"
                      for p in self._state["_facts"])

    # ----------------------------------------------------------------- internals

    def _task_sentence(self) -> str:
        text = self._state["feedback"]
        marker = "Your task is to: "
        sentence = text[text.rfind(marker) + len(marker):].strip() if marker in text else ""
        return sentence.removesuffix(".")

    def _anchor(self) -> str:
        if self.anchor_mode == "state":
            return f"{self._game.task_id}\n" + "\n".join(self.state_facts())
        return self._obs

    def _make_info(self, action_valid: bool) -> dict[str, Any]:
        won = bool(self._state["won"])
        admissible = [] if won else list(self._state["admissible_commands"])
        self._admissible = {_normalize(a): a for a in admissible}
        anchor = self._anchor()
        return {
            "task_id": self._game.task_id,
            "task": self._task_text,
            "task_type": self._game.task_type,
            "won": won,
            "action_valid": bool(action_valid),
            "anchor": anchor,
            "admissible_actions": admissible,
            "game_index": self.game_index,
        }
