"""ALFWorld task suites: generated offline from seeds, cached, laid out like the official data.

A generated suite lives under ``<cache>/suite-<key>/json_2.1.1/<train|valid_seen|valid_unseen>/
<task folder>/trial_agentgym_<index>/{game.tw-pddl, traj_data.json}``, the layout of the
official ALFWorld download, so the same reader plays both. Game ``i`` of a split is a
pure function of (split, i): its task type is ``TASK_TYPES[i % 6]``, its scene and
targets come from a generator seeded with (split, i, attempt). A game enters the suite
only after the planner's plan, played through the engine, wins it; that plan is stored
as the game's walkthrough. Games are generated on first use (or ahead with
``agentgym alfworld-suite``); writes are atomic and guarded by file locks, so parallel
workers can share a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from agentgym.envs.alfworld import SPLITS, TASK_TYPES
from agentgym.envs.alfworld import scenes as _scenes
from agentgym.envs.alfworld import tasks as _tasks
from agentgym.envs._cache import file_lock, write_atomic
from agentgym.errors import AgentGymError


FORMAT = 1
OFFICIAL_ROOT = "json_2.1.1"
SPLIT_DIRS = {"train": "train", "eval_seen": "valid_seen", "eval_unseen": "valid_unseen"}
SPLIT_ALIASES = {"valid_seen": "eval_seen", "valid_unseen": "eval_unseen",
                 "eval_in_distribution": "eval_seen", "eval_out_of_distribution": "eval_unseen"}
# The official sizes: 3,553 train games, 140 valid_seen, 134 valid_unseen.
DEFAULT_SIZES = {"train": 3553, "eval_seen": 140, "eval_unseen": 134}
MAX_ATTEMPTS = 50


class SuiteError(AgentGymError, ValueError):
    """A split, size or data directory the ALFWorld suites cannot use."""


@dataclass(frozen=True)
class Game:
    """One playable game: its files and what the environment reports about it."""

    path: Path            # the game.tw-pddl file
    task_id: str
    task_type: str

    def load(self) -> dict:
        with open(self.path, encoding="utf-8") as f:
            data = json.load(f)
        if "UNKNOWN GOAL" in data["grammar"]:  # a game whose sentence is in traj_data only
            data["grammar"] = data["grammar"].replace("UNKNOWN GOAL", _sentence_from_traj(
                self.path.parent / "traj_data.json"))
        return data


def canonical_split(split: str) -> str:
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise SuiteError(f"ALFWorld split must be one of {', '.join(SPLITS)} "
                         f"(or valid_seen / valid_unseen), got {split!r}")
    return split


def default_cache_dir() -> Path:
    """``$AGENTGYM_CACHE/alfworld``, else ``~/.cache/agentgym/alfworld``."""
    root = os.environ.get("AGENTGYM_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "agentgym"
    return base / "alfworld"


def suite_key() -> str:
    """What decides every generated game besides (split, index)."""
    blob = json.dumps([FORMAT, _scenes.domain_text(), _scenes.grammar_text(),
                       sorted(_scenes.available_scenes())])
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def suite_root(cache_dir: str | os.PathLike | None = None) -> Path:
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return base / f"suite-{suite_key()}"


# --------------------------------------------------------------------------- generation

def _scenes_for(split: str, task_type: str) -> list[int]:
    pool = _scenes.UNSEEN_SCENES if split == "eval_unseen" else _scenes.SEEN_SCENES
    available = set(_scenes.available_scenes())
    kinds = _tasks.ROOMS_FOR_TYPE[task_type]
    return [n for n in pool if n in available and _scenes.room_kind(n) in kinds]


def spec_for(split: str, index: int, retry: int = 0) -> tuple[_tasks.GameSpec, int]:
    """The game spec of game ``index`` of ``split`` and the attempt that made it
    (``retry`` > 0: a further candidate after the planner could not win one)."""
    task_type = TASK_TYPES[index % len(TASK_TYPES)]
    if split == "eval_unseen":
        accept = lambda sig: True
    else:
        accept = lambda sig: _tasks.signature_split(sig) == split
    candidates = _scenes_for(split, task_type)
    for attempt in range(MAX_ATTEMPTS):
        salt = f"{attempt}" if retry == 0 else f"retry{retry}:{attempt}"
        rng = random.Random(f"agentgym-alfworld:{split}:{index}:{salt}")
        try:
            return _tasks.build_game(rng.choice(candidates), task_type, rng, accept), attempt
        except _tasks.NoTaskError:
            continue
    raise SuiteError(f"could not build {task_type} game {index} of {split} "
                     f"in {MAX_ATTEMPTS} attempts")


_PROVER = None


def prove_solvable(game: dict, task: dict) -> list[str] | None:
    """The expert's plan for ``game``, if playing it through the engine wins.

    ``task``: the ``pddl_params`` and ``task_type`` of ``traj_data.json``.
    """
    global _PROVER
    from agentgym.envs.alfworld import expert
    from agentgym.envs.alfworld.engine import ENGINE_LOCK, FastPddlEnv

    with ENGINE_LOCK:
        if _PROVER is None:
            _PROVER = FastPddlEnv()
        env = _PROVER
        env.load(game)
        state = env.reset()
        if state["won"]:
            return None  # already won at the start: not a task
        try:
            plan = expert.plan(task["task_type"], task["pddl_params"]["object_target"],
                               task["pddl_params"]["parent_target"],
                               task["pddl_params"]["toggle_target"],
                               state["_facts"], env.names())
        except ValueError:
            return None
        for command in plan:
            if command not in state["admissible_commands"]:
                return None
            state, _, _ = env.step(command)
        return plan if state["won"] else None




stats = {"generated": 0, "cache_hits": 0}


def _index_file(root: Path, split: str, index: int) -> Path:
    return root / ".index" / split / f"{index}.json"


def _from_index(root: Path, split: str, index: int) -> Game | None:
    pointer = _index_file(root, split, index)
    if not pointer.is_file():
        return None
    with open(pointer, encoding="utf-8") as f:
        meta = json.load(f)
    path = root / meta["path"]
    if not path.is_file():
        return None
    return Game(path, meta["task_id"], meta["task_type"])


def ensure_game(split: str, index: int, cache_dir: str | os.PathLike | None = None) -> Game:
    """Game ``index`` of a generated split, generating and proving it on first use."""
    split = canonical_split(split)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise SuiteError(f"game index must be a non-negative integer, got {index!r}")
    root = suite_root(cache_dir)
    found = _from_index(root, split, index)
    if found is not None:
        stats["cache_hits"] += 1
        return found
    split_dir = root / OFFICIAL_ROOT / SPLIT_DIRS[split]
    split_dir.mkdir(parents=True, exist_ok=True)
    _index_file(root, split, index).parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_index_file(root, split, index).with_suffix(".lock")):
        found = _from_index(root, split, index)
        if found is not None:
            stats["cache_hits"] += 1
            return found
        game = _generate(split, index, split_dir)
        rel = game.path.relative_to(root)
        write_atomic(_index_file(root, split, index), json.dumps(
            {"path": str(rel), "task_id": game.task_id, "task_type": game.task_type}) + "\n")
    stats["generated"] += 1
    return game


def _generate(split: str, index: int, split_dir: Path) -> Game:
    task_id = f"alfworld-{split}-{index}"
    for retry in range(MAX_ATTEMPTS):
        spec, attempt = spec_for(split, index, retry)
        game = {"pddl_domain": _scenes.domain_text(), "grammar": spec.grammar(),
                "pddl_problem": spec.problem, "solvable": True, "walkthrough": None}
        plan = prove_solvable(game, spec.traj_data())
        if plan is None:
            continue
        game["walkthrough"] = plan
        trial = split_dir / spec.folder_name / f"trial_agentgym_{index:06d}"
        trial.mkdir(parents=True, exist_ok=True)
        write_atomic(trial / "traj_data.json", json.dumps(
            dict(spec.traj_data(), agentgym={"split": split, "index": index, "retry": retry,
                                              "attempt": attempt, "task_id": task_id}),
            indent=1) + "\n")
        write_atomic(trial / "game.tw-pddl", json.dumps(game) + "\n")
        return Game(trial / "game.tw-pddl", task_id, spec.task_type)
    raise SuiteError(f"no solvable game for {split} index {index} after {MAX_ATTEMPTS} tries")


def ensure_suite(split: str, size: int, cache_dir: str | os.PathLike | None = None,
                 progress=None) -> list[Game]:
    """Games ``0..size-1`` of a generated split (generated once, then read from the cache)."""
    split = canonical_split(split)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise SuiteError(f"suite size must be a positive integer, got {size!r}")
    games = []
    for i in range(size):
        games.append(ensure_game(split, i, cache_dir))
        if progress is not None:
            progress(i + 1, size)
    return games


# ------------------------------------------------------------------------ official data

def _sentence_from_traj(traj_path: Path) -> str:
    with open(traj_path, encoding="utf-8") as f:
        traj = json.load(f)
    anns = (traj.get("turk_annotations") or {}).get("anns") or []
    params = traj["pddl_params"]
    templates = _scenes.goal_library()[traj["task_type"]]["templates"]
    if templates:
        return templates[0].format(obj=params["object_target"].lower(),
                                   recep=params["parent_target"].lower(),
                                   toggle=params["toggle_target"].lower(),
                                   mrecep=params.get("mrecep_target", "").lower())
    return anns[0]["task_desc"]


def official_games(data_dir: str | os.PathLike, split: str) -> list[Game]:
    """The playable games of ``split`` in an official-layout directory, sorted by path.

    ``data_dir`` is the ALFWorld data root (holding ``json_2.1.1``) or ``json_2.1.1``
    itself. Like ``AlfredTWEnv``, games under 'movable' or 'Sliced' folders, games
    without ``game.tw-pddl`` and games not marked solvable are skipped.
    """
    split = canonical_split(split)
    base = Path(data_dir).expanduser()
    root = base / OFFICIAL_ROOT if (base / OFFICIAL_ROOT).is_dir() else base
    split_dir = root / SPLIT_DIRS[split]
    if not split_dir.is_dir():
        raise SuiteError(f"ALFWorld data directory {base} has no {OFFICIAL_ROOT}/"
                         f"{SPLIT_DIRS[split]} folder; point data_dir (or ALFWORLD_DATA) at "
                         f"the folder that holds {OFFICIAL_ROOT}, or leave both unset to use "
                         f"generated suites")
    games = []
    for traj in sorted(split_dir.rglob("traj_data.json")):
        folder = traj.parent
        rel = folder.relative_to(split_dir)
        if "movable" in str(rel) or "Sliced" in str(rel):
            continue
        game_file = folder / "game.tw-pddl"
        if not game_file.is_file():
            continue
        with open(game_file, encoding="utf-8") as f:
            if not json.load(f).get("solvable", False):
                continue
        with open(traj, encoding="utf-8") as f:
            task_type = json.load(f)["task_type"]
        games.append(Game(game_file, f"alfworld/{SPLIT_DIRS[split]}/{rel.as_posix()}", task_type))
    if not games:
        raise SuiteError(f"no playable ALFWorld games under {split_dir}")
    return games


# --------------------------------------------------------------------------------- CLI

def composition(games: list[Game]) -> Counter:
    return Counter(g.task_type for g in games)


def cli(split: str = "train", size: int | None = None, cache_dir: str | None = None) -> int:
    """``agentgym alfworld-suite``: generate (or find) a suite and print its composition."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    split = canonical_split(split)
    size = DEFAULT_SIZES[split] if size is None else size
    console = Console(highlight=False)
    with Progress(console=console, transient=True) as bar:
        job = bar.add_task(f"ALFWorld {split}", total=size)
        games = ensure_suite(split, size, cache_dir,
                             progress=lambda done, total: bar.update(job, completed=done))
    counts = composition(games)
    table = Table(title=f"ALFWorld {split}: {len(games)} games "
                        f"({stats['generated']} generated, {stats['cache_hits']} cached)")
    table.add_column("task type")
    table.add_column("games", justify="right")
    for task_type in TASK_TYPES:
        table.add_row(task_type, str(counts.get(task_type, 0)))
    console.print(table)
    console.print(f"suite folder: {suite_root(cache_dir) / OFFICIAL_ROOT / SPLIT_DIRS[split]}",
                  soft_wrap=True)
    return 0
