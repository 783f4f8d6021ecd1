"""``agentgym/TextWorld-v0``: TextWorld games generated offline from seeds.

One environment instance plays one family of games (``simple``, ``custom``,
``cooking``, ``treasure_hunter``) with fixed family parameters. Each split owns a
disjoint range of game seeds; ``reset(seed=s)`` plays game ``s % num_games`` of the
split (``options={"game_index": i}`` picks one directly). Games are generated on
first use and cached on disk (see ``agentgym.envs.textworld.games``).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import gymnasium

from agentgym.envs._cache import pick_game
from agentgym.errors import ConfigError
from agentgym.envs.textworld import games as _games
from agentgym.spaces import TextSpace

#: First game seed of each split; game ``i`` of a split has seed ``base + i``.
SPLIT_SEED_BASE = {"train": 0, "eval": 1_000_000}
#: Largest pool a split can have (keeps the seed ranges disjoint).
MAX_GAMES = 1_000_000
DEFAULT_NUM_GAMES = {"train": 50, "eval": 20}
REWARD_MODES = ("sparse", "dense")

# Commands that would take the interpreter outside the game (restart, undo, save, ...),
# change hidden interpreter settings (brief/verbose, score notification) or drive
# TextWorld's own instrumentation: never sent to the game.
_META_VERBS = frozenset({
    "restart", "restore", "save", "quit", "q", "undo", "script", "unscript",
    "transcript", "noscript", "verify", "brief", "superbrief", "verbose", "normal",
    "short", "long", "notify", "restrict", "enable", "disable",
    # these replay or patch the previous command: their effect depends on history
    "again", "g", "oops", "o",
})
_BLOCKED_REPLY = "That command is not available in this game."

_BANNER_LINE = re.compile(r"^[^A-Za-z0-9]*$")
_PROMPT_TAIL = re.compile(r"\n>[^\n]*\Z")
_GAME_OVER_PROMPT = re.compile(
    r"^\s*Would you like to RESTART, RESTORE a saved game, QUIT or UNDO the last command\?\s*$",
    re.MULTILINE)
_CENTERING = re.compile(r"^ {8,}(?=\*\*\*)", re.MULTILINE)
# The parser asked for the missing part of a command ("What do you want to take?"); the
# next input may answer it, so the question is part of the state.
_PARSER_QUESTION = re.compile(r"^(What|Whom|Who|Which|Where) do you (want|mean)\b[^\n]*\?\Z")


def split_seed(split: str, index: int) -> int:
    """The game seed of game ``index`` in ``split``."""
    return SPLIT_SEED_BASE[split] + index


def is_meta_command(command: str) -> bool:
    """Whether ``command`` (or any sentence of it) is an interpreter/meta command."""
    lowered = command.lower()
    if "tw-" in lowered or "print_state" in lowered:
        return True
    for sentence in re.split(r"[.,;!?]|\bthen\b", lowered):
        words = sentence.split()
        if words and words[0] in _META_VERBS:
            return True
    return False


def normalize_command(command: str) -> str:
    return " ".join(command.lower().split())


def clean_text(text: str) -> str:
    """Game output without the ASCII-art banner, the prompt/status line and the
    'would you like to RESTART' question; blank-line runs collapsed."""
    text = text.replace("\r", "")
    text = _PROMPT_TAIL.sub("", text)
    text = _GAME_OVER_PROMPT.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and _BANNER_LINE.match(lines[0]):
        lines.pop(0)
    text = "\n".join(lines)
    text = _CENTERING.sub("", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


class TextWorldConfigError(ConfigError, ValueError):
    """A constructor argument or reset option the TextWorld environment cannot use."""


class TextWorldEnv(gymnasium.Env):
    """TextWorld games (simple, custom, cooking, treasure_hunter) generated offline from seeds."""

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(
        self,
        family: str = "simple",
        split: str = "train",
        num_games: int | None = None,
        reward: str = "sparse",
        cache_dir: str | None = None,
        *,
        # simple
        rewards: str | None = None,
        goal: str | None = None,
        # custom
        world_size: int | None = None,
        nb_objects: int | None = None,
        quest_length: int | None = None,
        quest_breadth: int | None = None,
        # cooking
        recipe: int | None = None,
        take: int | None = None,
        go: int | None = None,
        open: bool | None = None,  # noqa: A002  (the tw-cooking skill name)
        cook: bool | None = None,
        cut: bool | None = None,
        drop: bool | None = None,
        # treasure_hunter
        level: int | None = None,
        render_mode: str | None = None,
    ):
        overrides = dict(rewards=rewards, goal=goal, world_size=world_size,
                         nb_objects=nb_objects, quest_length=quest_length,
                         quest_breadth=quest_breadth, recipe=recipe, take=take, go=go,
                         open=open, cook=cook, cut=cut, drop=drop, level=level)
        try:
            self.params = _games.resolve_params(family, overrides)
        except ValueError as exc:
            raise TextWorldConfigError(str(exc)) from None
        if split not in SPLIT_SEED_BASE:
            raise TextWorldConfigError(
                f"split must be one of {', '.join(SPLIT_SEED_BASE)}, got {split!r}")
        if num_games is None:
            num_games = DEFAULT_NUM_GAMES[split]
        if isinstance(num_games, bool) or not isinstance(num_games, int) \
                or not 1 <= num_games <= MAX_GAMES:
            raise TextWorldConfigError(
                f"num_games must be an integer in [1, {MAX_GAMES}], got {num_games!r}")
        if reward not in REWARD_MODES:
            raise TextWorldConfigError(
                f"reward must be one of {', '.join(REWARD_MODES)}, got {reward!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise TextWorldConfigError(f"render_mode must be None, 'ansi' or 'human', "
                                       f"got {render_mode!r}")

        self.family = family
        self.split = split
        self.num_games = num_games
        self.reward_mode = reward
        self.cache_dir = cache_dir if cache_dir is not None else str(_games.default_cache_dir())
        self.render_mode = render_mode
        self.family_key = _games.family_key(family, self.params)
        self.task_type = f"textworld-{family}"

        self.observation_space = TextSpace()
        self.action_space = TextSpace()

        self._tw = None          # the textworld environment of the loaded game
        self._files: _games.GameFiles | None = None
        self.game_index: int | None = None
        self.game_seed: int | None = None
        self.task_id: str | None = None
        self._state = None       # last textworld GameState
        self._obs = ""
        self._info: dict[str, Any] = {}
        self._admissible: set[str] = set()
        self._reward_total = 0.0
        self._done = False
        self._closed = False

    # ----------------------------------------------------------------- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        index = pick_game(seed, dict(options or {}), self.num_games, self.np_random,
                          TextWorldConfigError, "TextWorld")

        self.game_index = index
        self.game_seed = split_seed(self.split, index)
        self.task_id = f"tw-{self.family}-{self.family_key}-seed{self.game_seed}"
        files = _games.ensure_game(self.family, self.params, self.game_seed, self.cache_dir)
        with _games.TEXTWORLD_LOCK:
            self._load(files)
            self._state = self._tw.reset()
        self._reward_total = 0.0
        self._done = False
        self._obs = clean_text(self._state["feedback"] or "")
        self._info = self._make_info(action_valid=True)
        task = self.objective
        return self._obs, dict(self._info, **({"task": task} if task else {}))

    def step(self, action: str):
        if self._tw is None or self._state is None:
            raise RuntimeError("call reset() before step()")
        if self._done:  # only reachable without EpisodeGuard
            info = dict(self._info, action_valid=False)
            return self._obs, 0.0, True, False, info
        command = action.strip()
        if not command or is_meta_command(command):
            self._obs = _BLOCKED_REPLY if command else self._obs
            self._info = dict(self._info, action_valid=False)
            return self._obs, 0.0, False, False, dict(self._info)

        valid = normalize_command(command) in self._admissible
        prev_score = self._state["score"] or 0
        prev_facts = sorted(self._fact_strings(self._state["_facts"] or []))
        self._state, _, _ = self._tw.step(command)
        won, lost = bool(self._state["won"]), bool(self._state["lost"])
        # the game's own verdict: a command it acted on (a synonym such as "unlock the box
        # with the keycard" that won, scored or changed the world) was a valid one
        valid = valid or won or lost or (self._state["score"] or 0) != prev_score \
            or sorted(self._fact_strings(self._state["_facts"] or [])) != prev_facts
        self._done = won or lost
        self._obs = clean_text(self._state["feedback"] or "") or "Nothing happens."
        reward = self._reward(prev_score, won)
        self._reward_total += reward
        self._info = self._make_info(action_valid=valid)
        return self._obs, reward, self._done, False, dict(self._info)

    def render(self):
        if self.render_mode == "human":
            print(self._obs)
            return None
        return self._obs

    def close(self):
        self._close_tw()
        self._closed = True
        super().close()

    # ----------------------------------------------------------------- extras

    def walkthrough(self) -> list[str] | None:
        """Commands that win the current game from its initial state (None before reset).

        Every cached game was checked to be won by this sequence when it was generated.
        """
        return None if self._files is None else self._files.walkthrough

    @property
    def objective(self) -> str | None:
        """The current game's objective text (None before reset)."""
        return None if self._files is None else self._files.meta.get("objective")

    def state_facts(self) -> list[str]:
        """Sorted logical facts of the current state (what the anchor is built from)."""
        if self._state is None:
            return []
        return sorted(self._fact_strings(self._state["_facts"] or []))

    # ----------------------------------------------------------------- internals

    def _load(self, files: _games.GameFiles) -> None:
        if self._tw is not None and self._files is not None \
                and self._files.directory == files.directory:
            return  # same game: reset() restarts the story file from its initial state
        import textworld

        self._close_tw()
        infos = textworld.EnvInfos(admissible_commands=True, won=True, lost=True,
                                   score=True, max_score=True, facts=True)
        tw = textworld.start(str(files.z8), request_infos=infos)
        tw.seed(1234)  # the interpreter's RNG; the games also seed their own
        self._tw = tw
        self._files = files

    def _close_tw(self) -> None:
        if self._tw is not None:
            tw, self._tw = self._tw, None
            self._files = None
            self._state = None
            tw.close()

    def _reward(self, prev_score: int, won: bool) -> float:
        if self.reward_mode == "sparse":
            return 1.0 if won else 0.0
        max_score = self._state["max_score"] or 0
        if won:  # winning always completes the return to exactly 1.0
            return float(1.0 - self._reward_total)
        if max_score <= 0:
            return 0.0
        return float(((self._state["score"] or 0) - prev_score) / max_score)

    @staticmethod
    def _fact_strings(facts) -> list[str]:
        return [f"{p.name}({','.join(v.name for v in p.arguments)})" for p in facts]

    def _location(self, facts) -> str:
        game = self._state["game"]
        for p in facts:
            if p.name == "at" and p.arguments and p.arguments[0].name == "P":
                room = p.arguments[1].name
                info = game.infos.get(room) if game is not None else None
                return (info.name if info is not None and info.name else room) or room
        return ""

    def _make_info(self, action_valid: bool) -> dict[str, Any]:
        state = self._state
        facts = state["_facts"] or []
        score = int(state["score"] or 0)
        won, lost = bool(state["won"]), bool(state["lost"])
        admissible = [] if (won or lost) else sorted(set(state["admissible_commands"] or []))
        self._admissible = {normalize_command(a) for a in admissible}
        location = self._location(facts)
        question = self._obs if _PARSER_QUESTION.match(self._obs) else ""
        blob = "\n".join([self.task_id or "", f"score={score}", f"won={won}", f"lost={lost}",
                          f"question={question}"] + sorted(self._fact_strings(facts)))
        digest = hashlib.sha1(blob.encode()).hexdigest()[:16]
        return {
            "task_id": self.task_id,
            "task_type": self.task_type,
            "won": won,
            "lost": lost,
            "action_valid": bool(action_valid),
            "anchor": f"{location}|score={score}|{digest}",
            "admissible_actions": admissible,
            "score": score,
            "max_score": int(state["max_score"] or 0),
            "location": location,
            "game_index": self.game_index,
        }
