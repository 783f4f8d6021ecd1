"""The episode store: every episode of a run, token for token, in ``RUN_DIR/episodes.db``.

One SQLite file (standard library ``sqlite3``), append-only and crash-safe:

- ``add_episodes`` writes a batch in one transaction: after a crash the batch is either
  all there (every episode with all its steps) or not there at all. Nothing is ever
  rewritten except advantages (``set_advantages``) and, when a run resumes from a
  checkpoint, the episodes of later iterations (``delete_after``).
- WAL journal with ``synchronous=NORMAL`` (the default here): a commit is complete once
  its frames are in the WAL file, which is written before ``COMMIT`` returns, so killing
  the writer (``kill -9``) at any moment never loses a committed episode nor corrupts
  the file. Only an operating-system crash or power loss can roll back the last few
  commits (still without corruption); pass ``synchronous="FULL"`` to fsync every commit
  when that matters more than write speed.
- Readers (the viewer, ``agentgym replay``) open the file with ``readonly=True`` while
  the trainer appends; WAL lets them read the last committed state without blocking it.

Layout: ``episodes`` (one row per episode, the columns of :class:`EpisodeSummary`),
``steps`` (one row per step; token arrays as little-endian BLOBs: ids int32, logprobs and
entropies float32, so 1000 ids take 4000 bytes) and ``prompt_chunks``. Prompts repeat
(chat template, system prompt, task, overlapping history windows), so each prompt is cut
into ``CHUNK_TOKENS``-token chunks stored once by content hash; a step keeps the chunk
row ids (int64 BLOB, ``steps.prompt_chunks``) and ``prompt_len``. Identical prompts and
identical chunk-aligned prefixes are therefore stored once.

Tree rollouts (schema 2): a forked episode's first ``branch_step`` steps are its
parent's; they are stored once, with the episode that sampled them, and the fork keeps
a row in ``tree_links`` (tree id, parent, branch step, and per shared step its origin
episode and the fork's own advantage). ``get_episode`` reassembles the full trajectory.
A schema-1 store is migrated in place when opened for writing (one new table); opened
read-only, it reads as a store of chains.

Round trip: ``get_episode`` returns an :class:`~agentgym.episode.Episode` equal to the
one written, except that logprobs and entropies pass through float32 (exact when they
came from a float32 model, as they usually do), NaN floats read back as ``None`` (SQLite
has no NaN) and ``info``/``timings``/``advantage_parts`` pass through JSON (string keys;
tuples come back as lists).

Threads: one store object may be shared between threads; every call holds its lock, so
calls run one at a time. For reads in parallel with writes, open a separate read-only
store per reader thread or process.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from agentgym.episode import Episode, Step
from agentgym.errors import AgentGymError
from agentgym.rundir import filesystem_error

DB_NAME = "episodes.db"
SCHEMA_VERSION = 2
CHUNK_TOKENS = 128
FILTERS = ("run_id", "iteration", "split", "group_id", "env_id", "task_id", "task_type",
           "won", "termination", "episode_id", "has_error")
# columns whose distinct values and per-value statistics the viewer may ask for
GROUP_COLUMNS = ("run_id", "iteration", "split", "env_id", "task_type", "termination", "won")
ORDER_KEYS = {"iteration": "iteration", "episode": "id", "reward": "total_reward",
              "length": "length", "won": "won", "group": "group_id", "task": "task_id",
              "created": "created_at"}

_IDS, _FLOATS, _REFS = np.dtype("<i4"), np.dtype("<f4"), np.dtype("<i8")
_SQL_BATCH = 500  # bound parameters per IN (...) query

_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_SCHEMA = """
CREATE TABLE episodes (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL, iteration INTEGER NOT NULL, split TEXT NOT NULL,
    group_id TEXT NOT NULL, episode_id TEXT NOT NULL UNIQUE, env_id TEXT NOT NULL,
    task_id TEXT NOT NULL, task_type TEXT, seed INTEGER NOT NULL, won INTEGER NOT NULL,
    total_reward REAL, length INTEGER NOT NULL, termination TEXT NOT NULL, error TEXT,
    final_observation TEXT NOT NULL, info TEXT NOT NULL, created_at REAL NOT NULL);
CREATE INDEX episodes_iteration ON episodes (iteration);
CREATE INDEX episodes_split ON episodes (split);
CREATE INDEX episodes_won ON episodes (won);
CREATE INDEX episodes_task_type ON episodes (task_type);
CREATE INDEX episodes_termination ON episodes (termination);
CREATE INDEX episodes_group_id ON episodes (group_id);
CREATE TABLE prompt_chunks (
    id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, ids BLOB NOT NULL);
CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    episode_id TEXT NOT NULL REFERENCES episodes (episode_id), step INTEGER NOT NULL,
    observation TEXT NOT NULL, prompt_len INTEGER NOT NULL, prompt_chunks BLOB NOT NULL,
    response_ids BLOB NOT NULL, logprobs BLOB NOT NULL, entropies BLOB NOT NULL,
    response_text TEXT NOT NULL, action TEXT, action_valid INTEGER NOT NULL, reward REAL,
    anchor TEXT NOT NULL, entropy_mean REAL, advantage REAL, advantage_parts TEXT NOT NULL,
    timings TEXT NOT NULL, error TEXT, info TEXT NOT NULL,
    UNIQUE (episode_id, step));
CREATE TABLE tree_links (
    episode_id TEXT PRIMARY KEY REFERENCES episodes (episode_id), tree_id TEXT,
    parent_id TEXT, branch_step INTEGER NOT NULL, shared TEXT NOT NULL)
"""
# schema 1 -> 2: tree rollouts (the tables of schema 1 are unchanged)
_MIGRATE_1_2 = ("CREATE TABLE tree_links (episode_id TEXT PRIMARY KEY REFERENCES episodes "
                "(episode_id), tree_id TEXT, parent_id TEXT, branch_step INTEGER NOT NULL, "
                "shared TEXT NOT NULL)",)
# Read-side indexes (the viewer's filters); added to older stores on a writable open.
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS episodes_env_id ON episodes (env_id)",
    "CREATE INDEX IF NOT EXISTS episodes_error ON episodes (error)",
    "CREATE INDEX IF NOT EXISTS episodes_split_iteration ON episodes (split, iteration)",
    # covers stats(by=split/task_type): the overview reads it instead of the wide rows
    "CREATE INDEX IF NOT EXISTS episodes_outcomes ON episodes "
    "(split, task_type, won, total_reward, length)",
)

_STEP_COLUMNS = ("step", "observation", "prompt_len", "prompt_chunks", "response_ids",
                 "logprobs", "entropies", "response_text", "action", "action_valid",
                 "reward", "anchor", "entropy_mean", "advantage", "advantage_parts",
                 "timings", "error", "info")


class EpisodeNotFound(AgentGymError, KeyError):
    """No episode with this id in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass
class EpisodeSummary:
    """One row of the ``episodes`` table: an episode without its steps."""

    run_id: str
    iteration: int
    split: str
    group_id: str
    episode_id: str
    env_id: str
    task_id: str
    task_type: str | None
    seed: int
    won: bool
    total_reward: float | None
    length: int
    termination: str
    error: str | None
    final_observation: str
    info: dict[str, Any]
    created_at: float

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> EpisodeSummary:
        summary = cls(*row)
        summary.won = bool(summary.won)
        summary.info = json.loads(summary.info)
        return summary


_SUMMARY_COLUMNS = tuple(f.name for f in fields(EpisodeSummary))


@dataclass
class StepSummary:
    """A step without its prompt and token arrays (see :meth:`EpisodeStore.group_steps`)."""

    episode_id: str
    index: int
    anchor: str
    action: str | None
    action_valid: bool
    reward: float | None
    advantage: float | None
    advantage_parts: dict[str, float]
    entropy_mean: float | None
    episode_won: bool


class EpisodeStore:
    """Episodes of a run in one SQLite file; see the module docstring.

    ``path`` is the database file (an existing file or a name ending in ``.db``) or else
    a run directory, created if needed, holding ``episodes.db``. ``readonly=True``
    opens an existing store for reading only.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False,
                 synchronous: str = "NORMAL", timeout: float = 30.0):
        path = Path(path)
        self.path = path if path.is_file() or path.suffix == ".db" else path / DB_NAME
        self.readonly = readonly
        self._lock = threading.RLock()
        synchronous = synchronous.upper()
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._con = self._open(timeout)
        try:
            if not readonly:
                for pragma in ("journal_mode=WAL", f"synchronous={synchronous}",
                               "foreign_keys=ON"):
                    self._con.execute(f"PRAGMA {pragma}")
            self._check_schema()
        except BaseException as exc:
            self._con.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise AgentGymError(f"{self.path} is not a readable agentgym episode store "
                                    f"({exc})") from exc
            raise

    def _open(self, timeout: float) -> sqlite3.Connection:
        if self.readonly and not self.path.is_file():
            raise AgentGymError(f"no episode store at {self.path}: check the run "
                                "directory (the trainer creates episodes.db)")
        if self.readonly:
            target, uri = self.path.resolve().as_uri() + "?mode=ro", True
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(self.path), False
        try:
            return sqlite3.connect(target, uri=uri, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise AgentGymError(f"cannot open the episode store {self.path}: {exc}") from exc

    def _check_schema(self) -> None:
        if self.readonly:
            found = self._schema_version()
        else:
            with self._transaction():
                self._con.execute(_META)
                found = self._schema_version()
                if found is None:  # a new store
                    for statement in _SCHEMA.split(";"):
                        self._con.execute(statement)
                    found = str(SCHEMA_VERSION)
                    self._con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (found,))
                if found == "1":
                    for statement in _MIGRATE_1_2:
                        self._con.execute(statement)
                    found = str(SCHEMA_VERSION)
                    self._con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                      (found,))
                if found == str(SCHEMA_VERSION):
                    for statement in _INDEXES:
                        self._con.execute(statement)
        self._trees = found == str(SCHEMA_VERSION)   # a read-only schema-1 store has none
        if found not in ("1", str(SCHEMA_VERSION)):
            raise AgentGymError(f"{self.path} has episode-store schema version {found}; "
                                f"this agentgym reads versions 1 to {SCHEMA_VERSION}")

    def _schema_version(self) -> str | None:
        row = self._con.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else row[0]

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[None]:
        """All statements inside commit together or not at all (holds the lock)."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                try:
                    yield
                except BaseException:
                    if self._con.in_transaction:  # SQLite already rolled back a full disk
                        self._con.execute("ROLLBACK")
                    raise
                self._con.execute("COMMIT")
            except sqlite3.DatabaseError as exc:   # a full disk, a read-only or damaged file
                friendly = filesystem_error(exc, "the episode store", self.path)
                if friendly is None or self.readonly:   # writing to a reader is a caller's bug
                    raise
                raise friendly from exc

    # ---- writing ----------------------------------------------------------------------

    def add_episodes(self, episodes: Sequence[Episode]) -> None:
        """Append episodes (with their advantages, if already set) in one transaction.

        Raises ``sqlite3.IntegrityError`` (and writes nothing) if an episode id is
        already stored or repeated in the batch.
        """
        with self._transaction():
            for episode in episodes:
                self._insert(episode)

    def _insert(self, ep: Episode) -> None:
        indices = [step.index for step in ep.steps]
        if any(a >= b for a, b in zip(indices, indices[1:])):
            raise ValueError(f"episode {ep.episode_id}: step indices must increase, "
                             f"got {indices}")
        row = (ep.run_id, ep.iteration, ep.split, ep.group_id, ep.episode_id, ep.env_id,
               ep.task_id, ep.task_type, ep.seed, ep.won, ep.total_reward, ep.length,
               ep.termination, ep.error, ep.final_observation, _json(ep.info), time.time())
        self._con.execute(f"INSERT INTO episodes ({', '.join(_SUMMARY_COLUMNS)}) "
                          f"VALUES ({_marks(len(row))})", row)
        if ep.tree_id is not None or ep.parent_id is not None:
            self._con.execute("INSERT INTO tree_links VALUES (?, ?, ?, ?, ?)",
                              (ep.episode_id, ep.tree_id, ep.parent_id, ep.branch_step,
                               _json(_shared(ep.steps[:ep.branch_step], ep.episode_id))))
        self._con.executemany(
            f"INSERT INTO steps (episode_id, {', '.join(_STEP_COLUMNS)}) "
            f"VALUES ({_marks(len(_STEP_COLUMNS) + 1)})",
            [(ep.episode_id, *self._step_row(step)) for step in ep.own_steps])

    def _step_row(self, s: Step) -> tuple:
        return (s.index, s.observation, len(s.prompt_ids), self._put_prompt(s.prompt_ids),
                _pack(s.response_ids, _IDS), _pack(s.logprobs, _FLOATS),
                _pack(s.entropies, _FLOATS), s.response_text, s.action, s.action_valid,
                s.reward, s.anchor, s.entropy_mean, s.advantage, _json(s.advantage_parts),
                _json(s.timings), s.error, _json(s.info))

    def _put_prompt(self, prompt_ids: Sequence[int]) -> bytes:
        """Store the prompt's chunks (each once, by content hash); return their row ids."""
        ids = np.asarray(prompt_ids, dtype=_IDS)
        refs = []
        for start in range(0, len(ids), CHUNK_TOKENS):
            blob = ids[start:start + CHUNK_TOKENS].tobytes()
            digest = hashlib.blake2b(blob, digest_size=16).digest()
            row = self._con.execute("SELECT id FROM prompt_chunks WHERE hash = ?",
                                    (digest,)).fetchone()
            if row is None:
                row = (self._con.execute("INSERT INTO prompt_chunks (hash, ids) VALUES (?, ?)",
                                         (digest, blob)).lastrowid,)
            refs.append(row[0])
        return _pack(refs, _REFS)

    def set_advantages(self, episode_id: str, advantages: Sequence[float | None],
                       parts: Sequence[dict[str, float]] | None = None) -> None:
        """Set the advantage (and its parts) of every step of a stored episode."""
        with self._transaction():
            self._write_advantages(episode_id, advantages, parts)

    def update_advantages(self, episodes: Sequence[Episode]) -> None:
        """Copy ``advantage``/``advantage_parts`` of these (stored) episodes' steps."""
        with self._transaction():
            for ep in episodes:
                self._write_advantages(ep.episode_id, [s.advantage for s in ep.steps],
                                       [s.advantage_parts for s in ep.steps])

    def _write_advantages(self, episode_id: str, advantages: Sequence[float | None],
                          parts: Sequence[dict[str, float]] | None) -> None:
        steps = [r[0] for r in self._con.execute(
            "SELECT step FROM steps WHERE episode_id = ? ORDER BY step", (episode_id,))]
        if not steps and not self._exists(episode_id):
            raise EpisodeNotFound(f"no episode {episode_id!r} in {self.path}")
        parts = [{}] * len(advantages) if parts is None else parts
        link = self._link(episode_id)
        if link is not None and link[2]:   # the fork's own advantages of its shared steps
            k = link[2]
            shared = [[origin, a, p] for (origin, _, _), a, p
                      in zip(json.loads(link[3]), advantages[:k], parts[:k])]
            self._con.execute("UPDATE tree_links SET shared = ? WHERE episode_id = ?",
                              (_json(shared), episode_id))
            advantages, parts = advantages[k:], parts[k:]
        if not len(steps) == len(advantages) == len(parts):
            raise ValueError(f"episode {episode_id} has {len(steps)} steps; got "
                             f"{len(advantages)} advantages and {len(parts)} parts")
        self._con.executemany(
            "UPDATE steps SET advantage = ?, advantage_parts = ? "
            "WHERE episode_id = ? AND step = ?",
            [(a, _json(p), episode_id, s) for a, p, s in zip(advantages, parts, steps)])

    def delete_after(self, iteration: int) -> int:
        """Remove the episodes of iterations after ``iteration``; return how many.

        The one exception to append-only: a run resumed from the checkpoint of
        ``iteration`` drops what the interrupted run wrote after it, then redoes it.
        """
        with self._transaction():
            self._con.execute("DELETE FROM steps WHERE episode_id IN "
                              "(SELECT episode_id FROM episodes WHERE iteration > ?)",
                              (iteration,))
            self._con.execute("DELETE FROM tree_links WHERE episode_id IN "
                              "(SELECT episode_id FROM episodes WHERE iteration > ?)",
                              (iteration,))
            return self._con.execute("DELETE FROM episodes WHERE iteration > ?",
                                     (iteration,)).rowcount

    def _link(self, episode_id: str) -> tuple | None:
        """(tree_id, parent_id, branch_step, shared) of a fork, None for a chain."""
        if not self._trees:
            return None
        return self._con.execute("SELECT tree_id, parent_id, branch_step, shared FROM tree_links "
                                 "WHERE episode_id = ?", (episode_id,)).fetchone()

    def _exists(self, episode_id: str) -> bool:
        return self._con.execute("SELECT 1 FROM episodes WHERE episode_id = ?",
                                 (episode_id,)).fetchone() is not None

    # ---- reading ----------------------------------------------------------------------

    def get_episode(self, episode_id: str) -> Episode:
        """The full episode, steps and token arrays included."""
        with self._transaction(write=False):  # one consistent snapshot
            row = self._con.execute(
                f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM episodes WHERE episode_id = ?",
                (episode_id,)).fetchone()
            if row is None:
                raise EpisodeNotFound(f"no episode {episode_id!r} in {self.path}")
            link = self._link(episode_id)
            shared = json.loads(link[3]) if link is not None else []
            rows = [self._con.execute(f"SELECT {', '.join(_STEP_COLUMNS)} FROM steps WHERE "
                                      "episode_id = ? AND step = ?", (origin, k)).fetchone()
                    for k, (origin, _, _) in enumerate(shared)]
            if any(r is None for r in rows):
                raise AgentGymError(f"{self.path}: episode {episode_id} shares steps with an "
                                    "episode that is not in the store")
            rows += self._con.execute(
                f"SELECT {', '.join(_STEP_COLUMNS)} FROM steps WHERE episode_id = ? "
                "ORDER BY step", (episode_id,)).fetchall()
            prompts = self._get_prompts([r[3] for r in rows])
        s = EpisodeSummary.from_row(row)
        steps = [_step(r, prompt) for r, prompt in zip(rows, prompts)]
        for step, (origin, advantage, parts) in zip(steps, shared):
            step.info["shared_from"] = origin
            step.advantage, step.advantage_parts = advantage, parts
        tree_id, parent_id, branch_step = link[:3] if link is not None else (None, None, 0)
        return Episode(run_id=s.run_id, iteration=s.iteration, split=s.split,
                       group_id=s.group_id, episode_id=s.episode_id, env_id=s.env_id,
                       task_id=s.task_id, seed=s.seed, steps=steps, won=s.won,
                       total_reward=s.total_reward, termination=s.termination,
                       error=s.error, task_type=s.task_type,
                       final_observation=s.final_observation, info=s.info,
                       tree_id=tree_id, parent_id=parent_id, branch_step=branch_step)

    def _get_prompts(self, chunk_refs: list[bytes]) -> list[list[int]]:
        refs = [np.frombuffer(blob, dtype=_REFS).tolist() for blob in chunk_refs]
        wanted = sorted({ref for step in refs for ref in step})
        chunks: dict[int, bytes] = {}
        for start in range(0, len(wanted), _SQL_BATCH):
            batch = wanted[start:start + _SQL_BATCH]
            chunks.update(self._con.execute(
                f"SELECT id, ids FROM prompt_chunks WHERE id IN ({_marks(len(batch))})",
                batch))
        return [_unpack(b"".join(chunks[ref] for ref in step), _IDS) for step in refs]

    def query(self, *, limit: int | None = 100, offset: int = 0,
              order: str = "iteration,episode", **filters: Any) -> list[EpisodeSummary]:
        """Episode summaries matching ``filters``, a page at a time.

        Filters (keyword, each a value or a list of accepted values; None = any):
        ``run_id iteration split group_id env_id task_id task_type won termination
        episode_id``, and ``has_error`` (a bool: episodes with / without an error).
        ``order``: comma-separated keys from ``ORDER_KEYS`` (``-key`` for descending);
        "episode" is insertion order. ``limit=None`` returns every match.
        """
        where, params = _where(filters)
        columns = ", ".join(_SUMMARY_COLUMNS)
        if limit is None:
            sql = (f"SELECT {columns} FROM episodes{where} ORDER BY {_order_by(order)} "
                   "LIMIT -1 OFFSET ?")
            with self._lock:
                rows = self._con.execute(sql, [*params, offset]).fetchall()
            return [EpisodeSummary.from_row(row) for row in rows]
        # A page: sort and skip row ids only (narrow rows, often straight off an index),
        # then read the page's wide rows. Much faster on big stores than sorting them all.
        sql = f"SELECT id FROM episodes{where} ORDER BY {_order_by(order)} LIMIT ? OFFSET ?"
        with self._transaction(write=False):
            ids = [r[0] for r in self._con.execute(sql, [*params, limit, offset])]
            by_id = {}
            for start in range(0, len(ids), _SQL_BATCH):
                batch = ids[start:start + _SQL_BATCH]
                by_id.update((row[0], row[1:]) for row in self._con.execute(
                    f"SELECT id, {columns} FROM episodes WHERE id IN ({_marks(len(batch))})",
                    batch))
        return [EpisodeSummary.from_row(by_id[i]) for i in ids]

    def count(self, **filters: Any) -> int:
        """How many episodes match ``filters`` (the same keywords as :meth:`query`)."""
        where, params = _where(filters)
        with self._lock:
            return self._con.execute(f"SELECT COUNT(*) FROM episodes{where}",
                                     params).fetchone()[0]

    def iterations(self, **filters: Any) -> list[int]:
        """The iterations that have episodes matching ``filters``, ascending."""
        where, params = _where(filters)
        with self._lock:
            return [r[0] for r in self._con.execute(
                f"SELECT DISTINCT iteration FROM episodes{where} ORDER BY iteration", params)]

    def distinct(self, column: str, **filters: Any) -> list[Any]:
        """The distinct values of ``column`` (one of ``GROUP_COLUMNS``) among the matches,
        ascending, None first."""
        _check_group_columns([column])
        where, params = _where(filters)
        if where or column == "run_id":
            sql = f"SELECT DISTINCT {column} FROM episodes{where} ORDER BY {column}"
        else:  # hop along the column's index, one search per value (a loose index scan)
            sql = (f"WITH RECURSIVE v(x) AS (SELECT MIN({column}) FROM episodes UNION ALL "
                   f"SELECT (SELECT MIN({column}) FROM episodes WHERE {column} > v.x) FROM v "
                   f"WHERE v.x IS NOT NULL) "
                   f"SELECT NULL WHERE EXISTS (SELECT 1 FROM episodes WHERE {column} IS NULL) "
                   f"UNION ALL SELECT x FROM v WHERE x IS NOT NULL")
        with self._lock:
            return [r[0] for r in self._con.execute(sql, params)]

    def stats(self, by: Sequence[str] = (), **filters: Any) -> list[dict[str, Any]]:
        """Per combination of the ``by`` columns (from ``GROUP_COLUMNS``): how many episodes
        match, how many were won, mean reward and mean length."""
        _check_group_columns(by)
        where, params = _where(filters)
        keys = ", ".join(by)
        sql = (f"SELECT {keys + ', ' if by else ''}COUNT(*), SUM(won), AVG(total_reward), "
               f"AVG(length) FROM episodes{where}"
               + (f" GROUP BY {keys} ORDER BY {keys}" if by else ""))
        with self._lock:
            rows = self._con.execute(sql, params).fetchall()
        out = []
        for row in rows:
            n, wins, reward, length = row[len(by):]
            if n:
                out.append({**dict(zip(by, row[:len(by)])), "episodes": n, "wins": wins or 0,
                            "reward_mean": reward, "length_mean": length})
        return out

    def group_steps(self, group_id: str) -> list[StepSummary]:
        """Every step of every episode in a group, without prompts or token arrays: what
        anchor-state grouping (GiGPO) compares. Ordered by episode, then step."""
        sql = ("SELECT s.episode_id, s.step, s.anchor, s.action, s.action_valid, s.reward, "
               "s.advantage, s.advantage_parts, s.entropy_mean, e.won "
               "FROM episodes e JOIN steps s ON s.episode_id = e.episode_id "
               "WHERE e.group_id = ? ORDER BY e.id, s.step")
        with self._lock:
            rows = self._con.execute(sql, (group_id,)).fetchall()
        return [StepSummary(episode_id=r[0], index=r[1], anchor=r[2], action=r[3],
                            action_valid=bool(r[4]), reward=r[5], advantage=r[6],
                            advantage_parts=json.loads(r[7]), entropy_mean=r[8],
                            episode_won=bool(r[9])) for r in rows]

    def quick_check(self) -> None:
        """Raise a clear error if SQLite's ``PRAGMA quick_check`` finds damaged pages
        (run before resuming a run or exporting it, so neither carries on over them)."""
        try:
            with self._lock:
                problems = [r[0] for r in self._con.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise AgentGymError(f"the episode store {self.path} is damaged ({'; '.join(problems[:3])}); "
                                "restore it from a copy, or start a new run in another logging.run_dir")

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" for a sound file."""
        with self._lock:
            return "\n".join(r[0] for r in self._con.execute("PRAGMA integrity_check"))

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _step(row: Sequence[Any], prompt_ids: list[int]) -> Step:
    (index, observation, _len, _refs, response_ids, logprobs, entropies, response_text,
     action, action_valid, reward, anchor, _entropy_mean, advantage, advantage_parts,
     timings, error, info) = row
    return Step(index=index, observation=observation, prompt_ids=prompt_ids,
                response_ids=_unpack(response_ids, _IDS), logprobs=_unpack(logprobs, _FLOATS),
                entropies=_unpack(entropies, _FLOATS), response_text=response_text,
                action=action, action_valid=bool(action_valid), reward=reward, anchor=anchor,
                timings=json.loads(timings), error=error, advantage=advantage,
                advantage_parts=json.loads(advantage_parts), info=json.loads(info))


def _shared(steps: Sequence[Step], episode_id: str) -> list[list]:
    """Per shared step of a fork: [origin episode, the fork's advantage, its parts]."""
    for s in steps:
        if "shared_from" not in s.info:
            raise ValueError(f"episode {episode_id}: step {s.index} is before branch_step but "
                             "has no info['shared_from'] (the episode that sampled it)")
    return [[s.info["shared_from"], s.advantage, s.advantage_parts] for s in steps]


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for name, value in filters.items():
        if name not in FILTERS:
            raise TypeError(f"unknown episode filter {name!r}; use one of {FILTERS}")
        if value is None:
            continue
        if name == "has_error":  # a bool: episodes with (or without) an error
            clauses.append("error IS NOT NULL" if value else "error IS NULL")
            continue
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        clauses.append(f"{name} IN ({_marks(len(values))})")
        params += values
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _check_group_columns(columns: Sequence[str]) -> None:
    for column in columns:
        if column not in GROUP_COLUMNS:
            raise ValueError(f"cannot group episodes by {column!r}; use one of {GROUP_COLUMNS}")


def _order_by(order: str) -> str:
    terms = []
    for key in order.split(","):
        name = key.strip().lstrip("-")
        if name not in ORDER_KEYS:
            raise ValueError(f"cannot order episodes by {name!r}; use {sorted(ORDER_KEYS)}")
        terms.append(ORDER_KEYS[name] + (" DESC" if key.strip().startswith("-") else ""))
    return ", ".join(terms + ["id"])


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _pack(values: Sequence[float], dtype: np.dtype) -> bytes:
    return np.asarray(values, dtype=dtype).tobytes()


def _unpack(blob: bytes, dtype: np.dtype) -> list:
    return np.frombuffer(blob, dtype=dtype).tolist()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
