"""Offline TextWorld game generation, keyed by (family, parameters, seed), cached on disk.

Games are made with TextWorld's own generators (the Python API behind ``tw-make``):
``textworld.generator.make_game`` for the ``custom`` family and the registered
challenges (``tw-simple``, ``tw-cooking``, ``tw-treasure_hunter``) for the others,
then compiled to a ``.z8`` story file with the bundled Inform 7 compiler.

Cache layout (one directory per game, published atomically)::

    <cache_dir>/<family>-<key>/params.json        the family parameters behind <key>
    <cache_dir>/<family>-<key>/seed-<N>/game.z8   the story file (played by Jericho)
    <cache_dir>/<family>-<key>/seed-<N>/game.json TextWorld's game description
    <cache_dir>/<family>-<key>/seed-<N>/meta.json walkthrough, objective, max score, ...

``<key>`` is a short hash of the family, its parameters, the TextWorld version and
this module's ``CACHE_FORMAT``. A game is generated into a private temporary
directory and renamed into place in one step, so a reader never sees half a game;
a per-game ``flock`` keeps processes (and threads) from generating the same game
twice at once, and the rename stays safe even where locking does not work. Every
generated game is played through its walkthrough before it is published, so a game
in the cache is known to be winnable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from agentgym.envs._cache import file_lock, write_atomic
from agentgym.errors import AgentGymError


CACHE_FORMAT = 1
MAX_ATTEMPTS = 8  # seeds whose quest cannot be generated fall back to derived seeds

# Family -> {parameter: default}. Defaults are deliberately easy.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    # tw-simple: fixed six-room house; find a food item and put it on the stove.
    "simple": {"rewards": "dense", "goal": "detailed"},
    # tw-make custom: random map, objects and a quest of a given length.
    "custom": {"world_size": 3, "nb_objects": 6, "quest_length": 3, "quest_breadth": 1},
    # tw-cooking (First TextWorld Problems): read the cookbook, gather, prepare, eat.
    "cooking": {"recipe": 1, "take": 1, "go": 1, "open": False, "cook": False,
                "cut": False, "drop": False},
    # tw-treasure_hunter: fetch the right object, don't pick up the wrong one.
    "treasure_hunter": {"level": 5},
}
FAMILIES = tuple(FAMILY_DEFAULTS)

_CHALLENGE_NAMES = {"simple": "tw-simple", "cooking": "tw-cooking",
                    "treasure_hunter": "tw-treasure_hunter"}

# Generation touches TextWorld's global random generator (``textworld.g_rng``), and
# TextWorld's logic/grammar parsers (tatsu) are not thread-safe: generating, loading
# and restarting games take this lock, one at a time per process. Steps do not.
TEXTWORLD_LOCK = threading.RLock()

#: Counters for tests and diagnostics: games generated / found in the cache.
stats = {"generated": 0, "cache_hits": 0}


class GameGenerationError(AgentGymError, RuntimeError):
    """TextWorld could not produce a winnable game for these parameters."""


@dataclass(frozen=True)
class GameFiles:
    """A generated game in the cache."""

    directory: Path
    meta: dict[str, Any]

    @property
    def z8(self) -> Path:
        return self.directory / "game.z8"

    @property
    def walkthrough(self) -> list[str]:
        return list(self.meta["walkthrough"])


# ----------------------------------------------------------------------------- params

def default_cache_dir() -> Path:
    """``$AGENTGYM_CACHE/textworld``, else ``~/.cache/agentgym/textworld``."""
    root = os.environ.get("AGENTGYM_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "agentgym"
    return base / "textworld"


def resolve_params(family: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The family's full parameter dict: defaults updated with ``overrides`` (None = default).

    Raises ValueError with a message that says what is allowed.
    """
    if family not in FAMILY_DEFAULTS:
        raise ValueError(f"unknown TextWorld family {family!r}; choose one of "
                         f"{', '.join(FAMILIES)}")
    defaults = FAMILY_DEFAULTS[family]
    given = {k: v for k, v in overrides.items() if v is not None}
    foreign = sorted(set(given) - set(defaults))
    if foreign:
        raise ValueError(
            f"parameter(s) {', '.join(foreign)} do not apply to TextWorld family {family!r}; "
            f"its parameters are: {', '.join(defaults)}")
    params = dict(defaults, **given)

    def need_int(name: str, lo: int, hi: int) -> None:
        v = params[name]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"TextWorld {family} parameter {name} must be an integer in "
                             f"[{lo}, {hi}], got {v!r}")

    def need_bool(name: str) -> None:
        if not isinstance(params[name], bool):
            raise ValueError(f"TextWorld {family} parameter {name} must be true or false, "
                             f"got {params[name]!r}")

    def need_choice(name: str, choices: tuple[str, ...]) -> None:
        if params[name] not in choices:
            raise ValueError(f"TextWorld {family} parameter {name} must be one of "
                             f"{', '.join(choices)}, got {params[name]!r}")

    if family == "simple":
        need_choice("rewards", ("dense", "balanced", "sparse"))
        need_choice("goal", ("detailed", "brief", "none"))
    elif family == "custom":
        need_int("world_size", 1, 50)
        need_int("nb_objects", 0, 200)
        need_int("quest_length", 1, 50)
        need_int("quest_breadth", 1, 10)
    elif family == "cooking":
        need_int("recipe", 1, 5)
        need_int("take", 0, 5)
        if params["take"] > params["recipe"]:
            raise ValueError("TextWorld cooking parameter take must be <= recipe "
                             f"(got take={params['take']}, recipe={params['recipe']})")
        if params["go"] not in (1, 6, 9, 12) or isinstance(params["go"], bool):
            raise ValueError(f"TextWorld cooking parameter go must be 1, 6, 9 or 12, "
                             f"got {params['go']!r}")
        for name in ("open", "cook", "cut", "drop"):
            need_bool(name)
    elif family == "treasure_hunter":
        need_int("level", 1, 30)
    return params


def _textworld_version() -> str:
    import textworld

    return str(textworld.__version__)


def family_key(family: str, params: dict[str, Any]) -> str:
    """Short stable hash of what decides a game besides its seed."""
    blob = json.dumps({"family": family, "params": params, "format": CACHE_FORMAT,
                       "textworld": _textworld_version()}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def family_dir(cache_dir: str | os.PathLike, family: str, params: dict[str, Any]) -> Path:
    return Path(cache_dir).expanduser() / f"{family}-{family_key(family, params)}"


def game_dir(cache_dir: str | os.PathLike, family: str, params: dict[str, Any],
             seed: int) -> Path:
    return family_dir(cache_dir, family, params) / f"seed-{seed}"


# -------------------------------------------------------------------------- the cache

def _load_cached(directory: Path) -> GameFiles | None:
    meta_path = directory / "meta.json"
    if not (meta_path.is_file() and (directory / "game.z8").is_file()
            and (directory / "game.json").is_file()):
        return None
    with open(meta_path, encoding="utf-8") as f:
        return GameFiles(directory, json.load(f))




def ensure_game(family: str, params: dict[str, Any], seed: int,
                cache_dir: str | os.PathLike | None = None) -> GameFiles:
    """The cached game for (family, params, seed), generating it on first use.

    ``params`` must be the full dict from ``resolve_params``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"game seed must be an integer in [0, 2**31), got {seed!r}")
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    fdir = family_dir(cache_dir, family, params)
    target = fdir / f"seed-{seed}"
    found = _load_cached(target)
    if found is not None:
        stats["cache_hits"] += 1
        return found

    fdir.mkdir(parents=True, exist_ok=True)
    params_file = fdir / "params.json"
    if not params_file.exists():
        write_atomic(params_file, json.dumps(
            {"family": family, "params": params, "format": CACHE_FORMAT,
             "textworld": _textworld_version()}, indent=2, sort_keys=True) + "\n")

    with file_lock(fdir / f".lock-seed-{seed}"):
        found = _load_cached(target)  # someone else made it while we waited
        if found is not None:
            stats["cache_hits"] += 1
            return found
        tmp = Path(tempfile.mkdtemp(dir=fdir, prefix=f".tmp-seed-{seed}-"))
        try:
            meta = _generate_into(tmp, family, params, seed)
            write_atomic(tmp / "meta.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
            try:
                os.rename(tmp, target)  # atomic; fails if another process got there first
            except OSError:
                found = _load_cached(target)
                if found is None:
                    raise
                return found
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    stats["generated"] += 1
    result = _load_cached(target)
    assert result is not None
    return result


def pregenerate(family: str, seeds: Iterable[int], cache_dir: str | os.PathLike | None = None,
                **params: Any) -> list[GameFiles]:
    """Generate (or find) the games for ``seeds``; e.g. to warm a cache before training."""
    full = resolve_params(family, params)
    return [ensure_game(family, full, s, cache_dir) for s in seeds]


# ------------------------------------------------------------------------- generation

def _attempt_seed(seed: int, attempt: int) -> int:
    if attempt == 0:
        return seed
    digest = hashlib.sha1(f"{seed}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % 2**31


def _make_game(family: str, params: dict[str, Any], gen_seed: int, path: Path):
    """The uncompiled game and the options to compile it with."""
    import textworld
    import textworld.challenges
    from textworld.generator import make_game

    options = textworld.GameOptions()
    options.seeds = gen_seed
    options.path = str(path)
    options.file_ext = ".z8"
    options.force_recompile = True
    textworld.g_rng.set_seed(gen_seed)  # anything that falls back to the global rng

    if family == "custom":
        options.nb_rooms = params["world_size"]
        options.nb_objects = params["nb_objects"]
        options.nb_parallel_quests = 1
        length, breadth = params["quest_length"], params["quest_breadth"]
        options.chaining.min_length = options.chaining.max_length = length
        options.chaining.min_depth = 1
        options.chaining.max_depth = length
        options.chaining.min_breadth = options.chaining.max_breadth = breadth
        game = make_game(options)
    else:
        _, make, _ = textworld.challenges.CHALLENGES[_CHALLENGE_NAMES[family]]
        if family == "simple":
            settings = {"rewards": params["rewards"], "goal": params["goal"], "test": False}
        elif family == "cooking":
            settings = dict(params, recipe_seed=0, split=None)
        else:
            settings = {"level": params["level"]}
        game = make(settings=settings, options=options)
    return game, options


def _policy_commands(game) -> list[str] | None:
    from textworld.generator.game import GameProgression
    from textworld.generator.inform7 import Inform7Game

    policy = GameProgression(game).winning_policy
    if not policy:
        return None
    return Inform7Game(game).gen_commands_from_actions(policy)


def _wins(z8: Path, commands: list[str]) -> bool:
    import textworld

    env = textworld.start(str(z8), request_infos=textworld.EnvInfos(won=True, lost=True))
    try:
        env.reset()
        for command in commands:
            state, _, done = env.step(command)
            if done:
                return bool(state["won"])
        return False
    finally:
        env.close()


def _generate_into(directory: Path, family: str, params: dict[str, Any], seed: int) -> dict:
    errors: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        gen_seed = _attempt_seed(seed, attempt)
        for leftover in directory.iterdir():
            leftover.unlink()
        start = time.perf_counter()
        try:
            with TEXTWORLD_LOCK:
                game, options = _make_game(family, params, gen_seed, directory / "game.z8")
                from textworld.generator import compile_game

                compile_game(game, options)
        except Exception as exc:  # QuestGenerationError, AssertionError, ...
            if type(exc).__name__ == "CouldNotCompileGameError":
                raise GameGenerationError(f"Inform 7 could not compile the game: {exc}") from exc
            errors.append(f"seed {gen_seed}: {type(exc).__name__}: {exc}")
            continue
        candidates = [list(game.metadata.get("walkthrough") or [])]
        policy = _policy_commands(game)
        if policy:
            candidates.append(policy)
        with TEXTWORLD_LOCK:  # playing it loads (parses) the game
            walkthrough = next((c for c in candidates if c and _wins(directory / "game.z8", c)), None)
        if walkthrough is None:
            errors.append(f"seed {gen_seed}: no walkthrough wins the generated game")
            continue
        with contextlib.suppress(OSError):
            (directory / "game.ni").unlink()  # Inform 7 source, not needed to play
        return {
            "family": family,
            "params": params,
            "seed": seed,
            "generator_seed": gen_seed,
            "attempt": attempt,
            "uuid": game.metadata.get("uuid"),
            "objective": game.objective,
            "max_score": game.max_score,
            "walkthrough": walkthrough,
            "textworld": _textworld_version(),
            "generation_seconds": round(time.perf_counter() - start, 3),
        }
    raise GameGenerationError(
        f"TextWorld could not generate a winnable {family} game with parameters {params} "
        f"for seed {seed} after {MAX_ATTEMPTS} attempts; try easier parameters.\n"
        + "\n".join(errors[-3:]))


def main(argv: list[str] | None = None) -> None:
    """``python -m agentgym.envs.textworld.games FAMILY N [--split eval] [key=value ...]``."""
    import argparse

    from agentgym.envs.textworld.env import split_seed

    parser = argparse.ArgumentParser(description="Pre-generate TextWorld games into the cache.")
    parser.add_argument("family", choices=FAMILIES)
    parser.add_argument("num_games", type=int)
    parser.add_argument("--split", default="train", choices=("train", "eval"))
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("params", nargs="*", help="family parameters as key=value")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.params:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    try:
        params = resolve_params(args.family, overrides)
    except ValueError as exc:
        parser.error(str(exc))
    for i in range(args.num_games):
        start = time.perf_counter()
        files = ensure_game(args.family, params, split_seed(args.split, i), args.cache_dir)
        print(f"{files.directory}  ({time.perf_counter() - start:.1f}s)")


if __name__ == "__main__":
    main()
