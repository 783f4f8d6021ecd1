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


def test_export_writes_into_the_run_directory_by_default(run_dir, capsys):
    assert main(["export", str(run_dir)]) == 0
    assert (run_dir / "episodes.jsonl").is_file()
    assert "episodes.jsonl" in capsys.readouterr().err


def test_merged_model_loads_alone_and_gives_the_lora_models_logits(tmp_path, capsys):
    import torch
    from transformers import AutoModelForCausalLM

    from agentgym.checkpoint import checkpoint_dir
    from agentgym.policy.models import apply_lora, load_model_and_tokenizer

    run = tmp_path / "run"
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    ckpt = checkpoint_dir(run, 3)
    ckpt.mkdir(parents=True)
    (run / "config.yaml").write_text(json.dumps({"model": {"name": "tiny-smollm2", "lora": lora}}))
    base, tokenizer = load_model_and_tokenizer("tiny-smollm2")
    model = apply_lora(base, lora)
    with torch.no_grad():  # a trained adapter: B is no longer zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p, generator=torch.Generator().manual_seed(1)) * 0.5)
    model.save_pretrained(ckpt / "model")
    (ckpt / "state.pt").write_bytes(b"")  # what marks a checkpoint as complete

    out = tmp_path / "merged"
    assert main(["export", str(run), "--merged-model", str(out)]) == 0
    assert "merged model" in capsys.readouterr().err
    merged = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    ids = torch.tensor([tokenizer("Open the door, then go north.")["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        plain = load_model_and_tokenizer("tiny-smollm2")[0](input_ids=ids).logits
        got = merged(input_ids=ids).logits
    assert not torch.allclose(expected, plain, atol=1e-3)  # the adapter matters
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert main(["export", str(run), "--merged-model", str(out)]) == 2  # never overwrites
