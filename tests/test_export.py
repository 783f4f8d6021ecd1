"""`agentgym export`: JSON Lines and Parquet hold the stored episodes, filters apply."""

from __future__ import annotations

import builtins
import json

import pytest

from agentgym.cli import main
from agentgym.errors import AgentGymError
from agentgym.export import export
from agentgym.store import EpisodeStore
from tests.replay_runs import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("export") / "run")


def stored(run_dir, **filters):
    with EpisodeStore(run_dir, readonly=True) as store:
        return [store.get_episode(s.episode_id)
                for s in store.query(limit=None, order="episode", **filters)]


def test_jsonl_round_trips_every_episode(run_dir, tmp_path, capsys):
    out = tmp_path / "all.jsonl"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert "wrote 13 episodes" in capsys.readouterr().err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    episodes = stored(run_dir)
    assert [r["episode_id"] for r in records] == [e.episode_id for e in episodes]
    for record, ep in zip(records, episodes):
        assert record["won"] == ep.won and record["length"] == ep.length
        assert [s["response_ids"] for s in record["steps"]] == [s.response_ids for s in ep.steps]
        assert [s["prompt_ids"] for s in record["steps"]] == [s.prompt_ids for s in ep.steps]
        assert [s["advantage_parts"] for s in record["steps"]] == [s.advantage_parts for s in ep.steps]


def test_filters_stdout_and_no_tokens(run_dir, capsys):
    assert main(["export", str(run_dir), "--out", "-", "--outcome", "lost", "--split", "train",
                 "--no-tokens"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["episode_id"] for r in records] == [
        e.episode_id for e in stored(run_dir, won=False, split="train")]
    assert records and "response_ids" not in records[0]["steps"][0]
    assert records[0]["steps"][0]["action"] is not None or records[0]["steps"][0]["response_text"]


def test_parquet_holds_the_same_records(run_dir, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    target, count = export(run_dir, tmp_path / "eval.parquet", "parquet", {"split": "eval"})
    table = pq.read_table(target)
    assert count == table.num_rows == 1
    row = table.to_pylist()[0]
    [ep] = stored(run_dir, split="eval")
    assert row["episode_id"] == ep.episode_id and row["seed"] == ep.seed
    assert [s["response_ids"] for s in row["steps"]] == [s.response_ids for s in ep.steps]
    assert [json.loads(s["advantage_parts"]) for s in row["steps"]] == [
        s.advantage_parts for s in ep.steps]
    # an export that matches nothing is still a valid (empty) file
    target, count = export(run_dir, tmp_path / "none.parquet", "parquet", {"iteration": 99})
    assert count == 0 and pq.read_table(target).num_rows == 0


def test_parquet_without_pyarrow_says_what_to_install(run_dir, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(AgentGymError, match=r"pip install .*\[parquet\]"):
        export(run_dir, tmp_path / "x.parquet", "parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_bad_arguments(run_dir, tmp_path):
    with pytest.raises(AgentGymError, match="only jsonl can be written to stdout"):
        export(run_dir, "-", "parquet")
    with pytest.raises(AgentGymError, match="unknown export format"):
        export(run_dir, tmp_path / "x.csv", "csv")
    with pytest.raises(AgentGymError, match="no run directory"):
        export(tmp_path / "missing", tmp_path / "x.jsonl")
