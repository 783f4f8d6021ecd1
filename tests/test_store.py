"""The episode store: round trips, queries, compact blobs, and surviving kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentgym.episode import CONTEXT, FAILURE, MAX_STEPS, SUCCESS, Episode, Step
from agentgym.errors import AgentGymError
from agentgym.store import CHUNK_TOKENS, EpisodeNotFound, EpisodeStore


def sample_episode(batch: int, index: int, *, iteration: int = 0, n_steps: int | None = None,
                   **overrides) -> Episode:
    """A deterministic episode; floats are float32-exact so round trips compare equal."""
    rng = np.random.default_rng(batch * 1000 + index)
    n_steps = int(rng.integers(0, 6)) if n_steps is None else n_steps
    system = list(range(300))  # shared by every prompt: stored once
    steps = []
    for k in range(n_steps):
        n = int(rng.integers(1, 40))
        steps.append(Step(
            index=k, observation=f"obs {k} — café ☕ 你好",
            prompt_ids=system + rng.integers(0, 50_000, 50 * (k + 1)).tolist(),
            response_ids=rng.integers(0, 50_000, n).tolist(),
            logprobs=(-rng.random(n)).astype(np.float32).tolist(),
            entropies=rng.random(n).astype(np.float32).tolist(),
            response_text=f"go north {k}", action=None if k == 1 else f"go {k}",
            action_valid=k != 1, reward=float(k == n_steps - 1), anchor=f"room{k}",
            timings={"generate_s": 0.25, "env_s": 0.125}))
    fields = dict(run_id="run", iteration=iteration, split="train", group_id=f"g{batch}",
                  episode_id=f"b{batch}-e{index}", env_id="agentgym/Test-v0",
                  task_id=f"task{batch}", seed=batch, steps=steps, won=index % 2 == 0,
                  total_reward=float(index % 2 == 0), termination=SUCCESS, task_type="pick")
    return Episode(**{**fields, **overrides})


@pytest.fixture
def store(tmp_path):
    with EpisodeStore(tmp_path) as s:
        yield s


def test_round_trip_every_field(store):
    step = Step(
        index=0, observation="Ünïcødé 🦀 \n\t\"quotes\" 'x' \\ nul:\x00 end",
        prompt_ids=list(range(2 * CHUNK_TOKENS + 1)), response_ids=[5, 2**31 - 1, 0],
        logprobs=[-0.5, -1.25, 0.0], entropies=[0.75, 2.0, 0.0], response_text="思考… go",
        action=None, action_valid=False, reward=-0.1, anchor="kitchen|holding:knife",
        timings={"generate_s": 1.5, "env_s": 0.01}, error="ParseError: no action",
        advantage=0.3, advantage_parts={"episode": 0.2, "step": 0.1},
        info={"tool_calls": [{"name": "search", "args": {"q": "ü"}}], "n": 3})
    episode = Episode(
        run_id="rün", iteration=7, split="eval", group_id="g-1", episode_id="ep-ü-1",
        env_id="agentgym/ALFWorld-v0", task_id="t/42", seed=2**40, steps=[step], won=True,
        total_reward=1.5, termination=CONTEXT, error="ContextOverflow: 4096",
        task_type="pick_and_place", final_observation="done ✓", info={"k": [1, None, "x"]})
    empty = Episode(run_id="r", iteration=0, split="train", group_id="g", episode_id="empty",
                    env_id="e", task_id="t", seed=0)
    store.add_episodes([episode, empty])
    assert store.get_episode("ep-ü-1") == episode
    assert store.get_episode("empty") == empty


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(
    st.lists(st.integers(0, 2**31 - 1), max_size=3 * CHUNK_TOKENS),
    st.lists(st.floats(width=32, allow_nan=False), max_size=20),
    st.text(), st.one_of(st.none(), st.text()),
    st.dictionaries(st.text(), st.one_of(st.integers(-2**53, 2**53), st.text(),
                                         st.floats(allow_nan=False), st.booleans())),
), max_size=4))
def test_round_trip_generated(steps):
    with tempfile.TemporaryDirectory() as tmp, EpisodeStore(tmp) as store:
        episode = sample_episode(0, 0, n_steps=0)
        episode.steps = [
            Step(index=k, observation=text, prompt_ids=ids, response_ids=ids[:len(floats)],
                 logprobs=floats, entropies=floats[::-1], response_text=text, action=action,
                 action_valid=bool(k % 2), reward=float(k), anchor=text, info=info)
            for k, (ids, floats, text, action, info) in enumerate(steps)]
        store.add_episodes([episode])
        assert store.get_episode(episode.episode_id) == episode


def test_blobs_are_compact_and_prompts_deduplicated(store):
    prompt = list(range(1000))
    episodes = [sample_episode(0, i, n_steps=1) for i in range(8)]
    for ep in episodes:
        ep.steps[0].prompt_ids = prompt
        ep.steps[0].response_ids = list(range(1000))
        ep.steps[0].logprobs = [-1.0] * 1000
    store.add_episodes(episodes)
    with sqlite3.connect(store.path) as con:
        sizes = con.execute("SELECT length(response_ids), length(logprobs), length(prompt_chunks)"
                            " FROM steps").fetchall()
        prompt_bytes = con.execute("SELECT sum(length(ids)) FROM prompt_chunks").fetchone()[0]
    assert sizes == [(4000, 4000, 8 * -(-1000 // CHUNK_TOKENS))] * 8
    assert prompt_bytes == 4000  # eight identical prompts, stored once
    assert all(store.get_episode(ep.episode_id).steps[0].prompt_ids == prompt
               for ep in episodes)


def test_query_filters_pagination_and_count(store):
    terminations = [SUCCESS, FAILURE, MAX_STEPS]
    episodes = [sample_episode(b, i, iteration=b, split="eval" if i == 3 else "train",
                               termination=terminations[i % 3], task_type=f"type{i % 2}")
                for b in range(3) for i in range(4)]
    store.add_episodes(episodes)
    assert store.iterations() == [0, 1, 2]
    assert store.iterations(split="eval", iteration=[0, 2]) == [0, 2]
    assert store.count() == 12
    assert [s.episode_id for s in store.query(limit=None)] == [e.episode_id for e in episodes]
    cases = [dict(iteration=1), dict(split="eval"), dict(won=True), dict(won=False),
             dict(task_type="type1"), dict(termination=MAX_STEPS), dict(group_id="g2"),
             dict(env_id="agentgym/Test-v0"), dict(termination=[SUCCESS, FAILURE], won=True),
             dict(iteration=2, split="train", won=None)]
    for filters in cases:
        expected = [e.episode_id for e in episodes
                    if all(v is None or getattr(e, k) in (v if isinstance(v, list) else [v])
                           for k, v in filters.items())]
        assert [s.episode_id for s in store.query(**filters)] == expected, filters
        assert store.count(**filters) == len(expected), filters
    pages = [store.query(limit=5, offset=o) for o in (0, 5, 10)]
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [s.episode_id for p in pages for s in p] == [e.episode_id for e in episodes]
    newest = store.query(order="-iteration,episode", limit=1)[0]
    assert (newest.episode_id, newest.iteration, newest.length) == ("b2-e0", 2, episodes[8].length)
    rewards = [s.total_reward for s in store.query(order="-reward")]
    assert rewards == sorted(rewards, reverse=True)
    with pytest.raises(TypeError, match="unknown episode filter"):
        store.query(colour="red")
    with pytest.raises(ValueError, match="cannot order"):
        store.query(order="iteration; DROP TABLE episodes")


def test_advantages_before_or_after_writing(store):
    before = sample_episode(0, 0, n_steps=3)
    for step in before.steps:
        step.advantage, step.advantage_parts = 0.5, {"episode": 0.5}
    after = sample_episode(0, 1, n_steps=3)
    store.add_episodes([before, after])
    assert store.get_episode(before.episode_id) == before
    assert [s.advantage for s in store.get_episode(after.episode_id).steps] == [None] * 3

    store.set_advantages(after.episode_id, [1.0, -1.0, 0.0], [{"step": 1.0}] * 3)
    got = store.get_episode(after.episode_id).steps
    assert [(s.advantage, s.advantage_parts) for s in got] == [
        (1.0, {"step": 1.0}), (-1.0, {"step": 1.0}), (0.0, {"step": 1.0})]
    for step in after.steps:
        step.advantage = 2.0
    store.update_advantages([after])
    assert store.get_episode(after.episode_id) == after
    with pytest.raises(ValueError, match="has 3 steps"):
        store.set_advantages(after.episode_id, [1.0])
    with pytest.raises(EpisodeNotFound):
        store.set_advantages("missing", [])


def test_delete_after_for_resumed_runs(store):
    store.add_episodes([sample_episode(b, i, iteration=b) for b in range(4) for i in range(2)])
    assert store.delete_after(1) == 4
    assert store.iterations() == [0, 1] and store.count() == 4
    with sqlite3.connect(store.path) as con:
        assert con.execute("SELECT count(*) FROM steps WHERE episode_id LIKE 'b2-%' "
                           "OR episode_id LIKE 'b3-%'").fetchone() == (0,)
    store.add_episodes([sample_episode(2, 0, iteration=2)])  # the same ids, written again
    assert store.get_episode("b2-e0") == sample_episode(2, 0, iteration=2)
    assert store.integrity_check() == "ok"


def test_batch_is_all_or_nothing(store):
    store.add_episodes([sample_episode(0, 0)])
    with pytest.raises(sqlite3.IntegrityError):
        store.add_episodes([sample_episode(1, 0), sample_episode(0, 0)])
    assert store.count() == 1
    with pytest.raises(EpisodeNotFound, match="no episode 'b1-e0'"):
        store.get_episode("b1-e0")
    bad = sample_episode(2, 0, n_steps=2)
    bad.steps[1].index = 0
    with pytest.raises(ValueError, match="step indices must increase"):
        store.add_episodes([bad])
    assert store.count() == 1


def test_readonly_and_bad_files(tmp_path):
    with pytest.raises(AgentGymError, match="no episode store"):
        EpisodeStore(tmp_path / "missing.db", readonly=True)
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(AgentGymError, match="not a readable agentgym episode store"):
        EpisodeStore(tmp_path / "junk.db")
    with EpisodeStore(tmp_path) as writer:
        writer.add_episodes([sample_episode(0, 0)])
        with EpisodeStore(tmp_path, readonly=True) as reader:
            assert reader.count() == 1
            writer.add_episodes([sample_episode(0, 1)])  # readers see new commits
            assert reader.count() == 2
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader.add_episodes([sample_episode(0, 2)])
        writer._con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(AgentGymError, match="schema version 99"):
        EpisodeStore(tmp_path)


def test_run_dir_paths_and_threads(tmp_path):
    run_dir = tmp_path / "runs" / "new"  # not created yet
    with EpisodeStore(run_dir) as store:
        assert store.path == run_dir / "episodes.db"
        threads = [threading.Thread(target=store.add_episodes,
                                    args=([sample_episode(b, i) for i in range(3)],))
                   for b in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.count() == 24
    with EpisodeStore(run_dir / "episodes.db", readonly=True) as reader:
        assert reader.get_episode("b7-e2") == sample_episode(7, 2)


WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from test_store import sample_episode
from agentgym.store import EpisodeStore
store = EpisodeStore(sys.argv[1])
for batch in range(1_000_000):
    episodes = [sample_episode(batch, i) for i in range(4)]
    store.add_episodes(episodes)
    print(" ".join(e.episode_id for e in episodes), flush=True)
"""


def test_survives_kill_9_of_the_writer(tmp_path):
    db = tmp_path / "episodes.db"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(Path(__file__).parent)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported: list[str] = []
    try:
        for _ in range(25):  # each line: a batch the child has committed
            line = child.stdout.readline()
            assert line, f"writer exited early: {child.stderr.read()}"
            reported += line.split()
        with EpisodeStore(db, readonly=True) as reader:  # reading while it writes
            assert reader.count() >= len(reported)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()

    with EpisodeStore(db) as store:
        assert store.integrity_check() == "ok"
        stored = [s.episode_id for s in store.query(limit=None)]
        assert stored[:len(reported)] == reported  # everything reported is there...
        for episode_id in stored:  # ...and every stored episode is complete
            batch, index = (int(part[1:]) for part in episode_id.split("-"))
            assert store.get_episode(episode_id) == sample_episode(batch, index)
        store.add_episodes([sample_episode(10**7, 0)])  # and it takes new episodes
        assert store.count() == len(stored) + 1
        assert store.integrity_check() == "ok"


def test_read_side_queries_for_the_viewer(store):
    episodes = [sample_episode(b, i, iteration=b % 2,
                               task_type=None if i == 3 else f"type{i % 2}",
                               error="EnvError: boom" if (b, i) == (1, 2) else None)
                for b in range(3) for i in range(4)]
    store.add_episodes(episodes)
    assert store.distinct("task_type") == [None, "type0", "type1"]
    assert store.distinct("iteration") == [0, 1]
    assert store.distinct("task_type", iteration=1) == [None, "type0", "type1"]
    assert store.distinct("won", task_type="type1") == [0]
    with pytest.raises(ValueError, match="cannot group"):
        store.distinct("final_observation")
    assert [s.episode_id for s in store.query(has_error=True)] == ["b1-e2"]
    assert store.count(has_error=False) == 11
    assert [s.episode_id for s in store.query(episode_id=["b2-e1", "b0-e0"])] == ["b0-e0", "b2-e1"]

    stats = {(r["iteration"], r["task_type"]): r
             for r in store.stats(by=("iteration", "task_type"))}
    expected = [e for e in episodes if e.iteration == 0 and e.task_type == "type0"]
    row = stats[(0, "type0")]
    assert row["episodes"] == len(expected) and row["wins"] == sum(e.won for e in expected)
    assert row["length_mean"] == pytest.approx(sum(e.length for e in expected) / len(expected))
    [total] = store.stats()
    assert total["episodes"] == 12 and total["wins"] == 6

    # a page comes back in order, the same rows as the whole list sliced
    order = "-reward,-iteration,episode"
    whole = [s.episode_id for s in store.query(order=order, limit=None)]
    paged = [s.episode_id for o in range(0, 12, 5)
             for s in store.query(order=order, limit=5, offset=o)]
    assert paged == whole


def test_group_steps_for_anchor_groups(store):
    a, b = sample_episode(0, 0, n_steps=3), sample_episode(0, 1, n_steps=2)
    other = sample_episode(1, 0, n_steps=2)
    b.steps[0].advantage_parts = {"episode": 0.5, "step": -0.25}
    store.add_episodes([a, other, b])
    steps = store.group_steps("g0")
    assert [(s.episode_id, s.index) for s in steps] == [
        ("b0-e0", 0), ("b0-e0", 1), ("b0-e0", 2), ("b0-e1", 0), ("b0-e1", 1)]
    first_b = steps[3]
    assert (first_b.anchor, first_b.action, first_b.advantage_parts, first_b.episode_won) == (
        "room0", "go 0", {"episode": 0.5, "step": -0.25}, False)
    assert store.group_steps("missing") == []


def test_old_stores_get_the_viewer_indexes(tmp_path):
    with EpisodeStore(tmp_path) as store:
        store.add_episodes([sample_episode(0, 0)])
        store._con.execute("DROP INDEX episodes_env_id")
    with EpisodeStore(tmp_path, readonly=True) as reader:  # read-only: works, unchanged
        assert reader.count(env_id="agentgym/Test-v0") == 1
    with EpisodeStore(tmp_path):
        pass
    with sqlite3.connect(tmp_path / "episodes.db") as con:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"episodes_env_id", "episodes_error", "episodes_split_iteration",
            "episodes_outcomes"} <= names
