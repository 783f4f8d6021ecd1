"""Episode store schema 2: tree episodes, shared steps stored once, migration from 1."""

import copy
import sqlite3

import pytest

from agentgym.store import EpisodeStore
from tests.test_tree_training import _tree_batch

# the schema-1 tables, as agentgym wrote them before tree rollouts
V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE episodes (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL, iteration INTEGER NOT NULL, split TEXT NOT NULL,
    group_id TEXT NOT NULL, episode_id TEXT NOT NULL UNIQUE, env_id TEXT NOT NULL,
    task_id TEXT NOT NULL, task_type TEXT, seed INTEGER NOT NULL, won INTEGER NOT NULL,
    total_reward REAL, length INTEGER NOT NULL, termination TEXT NOT NULL, error TEXT,
    final_observation TEXT NOT NULL, info TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE prompt_chunks (id INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE, ids BLOB NOT NULL);
CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    episode_id TEXT NOT NULL REFERENCES episodes (episode_id), step INTEGER NOT NULL,
    observation TEXT NOT NULL, prompt_len INTEGER NOT NULL, prompt_chunks BLOB NOT NULL,
    response_ids BLOB NOT NULL, logprobs BLOB NOT NULL, entropies BLOB NOT NULL,
    response_text TEXT NOT NULL, action TEXT, action_valid INTEGER NOT NULL, reward REAL,
    anchor TEXT NOT NULL, entropy_mean REAL, advantage REAL, advantage_parts TEXT NOT NULL,
    timings TEXT NOT NULL, error TEXT, info TEXT NOT NULL,
    UNIQUE (episode_id, step));
INSERT INTO episodes VALUES (1, 'old', 3, 'train', 'g', 'old-0', 'env', 't', NULL, 0, 1, 1.0,
    1, 'success', NULL, 'done', '{}', 0.0);
INSERT INTO prompt_chunks VALUES (1, X'00', X'0500000006000000');
INSERT INTO steps VALUES (1, 'old-0', 0, 'obs', 2, X'0100000000000000', X'07000000',
    X'00000000', X'0000803F', 'r', 'a', 1, 1.0, 's', 1.0, 0.5, '{}', '{}', NULL, '{}');
"""


def _v1_store(path):
    con = sqlite3.connect(path)
    con.executescript(V1)
    con.close()


def _with_advantages():
    eps = _tree_batch()
    for i, ep in enumerate(eps):
        for k, step in enumerate(ep.steps):
            step.advantage, step.advantage_parts = float(10 * i + k), {"episode": float(i)}
    return eps


def test_tree_episodes_round_trip_with_shared_steps_stored_once(tmp_path):
    eps = _with_advantages()
    with EpisodeStore(tmp_path / "e.db") as store:
        store.add_episodes(eps)
        back = [store.get_episode(ep.episode_id) for ep in eps]
        rows = store._con.execute("SELECT episode_id, step FROM steps ORDER BY id").fetchall()
    assert back == eps
    assert back[1].parent_id == "a" and back[1].branch_step == 1 and back[1].tree_id == "a"
    # a's two steps, b's own step, c's step: b's shared step is a's row
    assert rows == [("a", 0), ("a", 1), ("b", 1), ("c", 0)]
    # the fork keeps its own advantage for the step it shares
    assert back[1].steps[0].advantage == 10.0 and back[0].steps[0].advantage == 0.0


def test_update_advantages_of_a_fork_keeps_the_parents(tmp_path):
    eps = _with_advantages()
    with EpisodeStore(tmp_path / "e.db") as store:
        store.add_episodes(eps)
        changed = copy.deepcopy(eps[1])
        for step in changed.steps:
            step.advantage = -1.0
        store.update_advantages([changed])
        assert [s.advantage for s in store.get_episode("b").steps] == [-1.0, -1.0]
        assert [s.advantage for s in store.get_episode("a").steps] == [0.0, 1.0]


def test_a_schema_1_store_migrates_when_opened_for_writing(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    with EpisodeStore(path, readonly=True) as store:   # old runs still open, read-only too
        old = store.get_episode("old-0")
        assert old.tree_id is None and old.steps[0].prompt_ids == [5, 6]
    with EpisodeStore(path) as store:
        assert store._schema_version() == "2"
        assert store.get_episode("old-0") == old
        store.add_episodes(_with_advantages())
        assert store.get_episode("b").branch_step == 1
    with EpisodeStore(path, readonly=True) as store:
        assert store.count() == 4


def test_export_writes_each_leaf_as_a_full_trajectory(tmp_path):
    import json

    from agentgym.export import export

    eps = _with_advantages()
    with EpisodeStore(tmp_path / "run") as store:
        store.add_episodes(eps)
    export(tmp_path / "run", tmp_path / "out.jsonl")
    records = {r["episode_id"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())}
    b = records["b"]
    assert b["parent_id"] == "a" and b["branch_step"] == 1 and len(b["steps"]) == 2
    assert b["steps"][0]["response_ids"] == records["a"]["steps"][0]["response_ids"]
    assert b["steps"][0]["info"]["shared_from"] == "a"
