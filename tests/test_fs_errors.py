"""File-system trouble gives one line saying what to do: a full disk (a tiny tmpfs), a
read-only run directory, a run directory under a file, a damaged store."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from agentgym.checkpoint import latest_checkpoint, save_checkpoint
from agentgym.cli import main
from agentgym.errors import AgentGymError
from agentgym.store import EpisodeStore
from tests.test_store import sample_episode

CONFIG = "env:\n  id: agentgym/TextWorld-v0\nmodel:\n  name: tiny-smollm2\n"


def _mount_tmpfs(where: Path, options: str) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a full or read-only disk) needs root")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    return where


@pytest.fixture
def tiny_disk(tmp_path):
    where = _mount_tmpfs(tmp_path / "disk", "size=512k")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


@pytest.fixture
def read_only_disk(tmp_path):
    where = _mount_tmpfs(tmp_path / "ro", "ro,size=64k")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=True)


def _train_cli(tmp_path, capsys, run_dir, *extra) -> tuple[int, str]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    code = main(["train", str(config), f"logging.run_dir={run_dir}", *extra])
    return code, _err(capsys)


def _err(capsys) -> str:
    """stderr with the console's line wrapping undone."""
    return " ".join(capsys.readouterr().err.split())


def test_run_dir_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("not a directory")
    code, err = _train_cli(tmp_path, capsys, tmp_path / "afile" / "run")
    assert code == 2 and "part of that path is a file" in err and "logging.run_dir" in err
    assert "Traceback" not in err


def test_read_only_run_dir_is_one_line(tmp_path, capsys, read_only_disk):
    code, err = _train_cli(tmp_path, capsys, read_only_disk / "run")
    assert code == 2 and "Read-only file system" in err and "writable logging.run_dir" in err


def test_full_disk_while_writing_the_store_keeps_what_was_committed(tiny_disk):
    with EpisodeStore(tiny_disk / "episodes.db") as store:
        committed = 0
        with pytest.raises(AgentGymError, match="no space left writing the episode store"):
            for batch in range(10_000):
                store.add_episodes([sample_episode(batch, i, n_steps=5) for i in range(4)])
                committed += 4
        assert committed > 0
    with EpisodeStore(tiny_disk / "episodes.db", readonly=True) as store:
        assert store.count() == committed
        store.quick_check()


def test_full_disk_while_writing_a_checkpoint_leaves_no_half_checkpoint(tiny_disk):
    from agentgym.policy import make_policy

    policy = make_policy("tiny-smollm2", backend="hf")
    params = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    (tiny_disk / "filler").write_bytes(b"\0" * (500 << 10))   # almost nothing left
    with pytest.raises(AgentGymError, match="no space left|could not write the checkpoint"):
        save_checkpoint(tiny_disk, 1, policy.model, optimizer, None, np.random.default_rng(0))
    assert latest_checkpoint(tiny_disk) is None
    assert not list((tiny_disk / "checkpoints").glob("*.tmp"))


def test_full_disk_while_exporting_leaves_no_partial_file(tmp_path, tiny_disk, capsys):
    run = tmp_path / "run"
    with EpisodeStore(run) as store:
        store.add_episodes([sample_episode(b, i, n_steps=5) for b in range(30) for i in range(4)])
    out = tiny_disk / "episodes.jsonl"
    assert main(["export", str(run), "--out", str(out)]) == 2
    assert "no space left writing the export" in _err(capsys)
    assert list(tiny_disk.iterdir()) == []


def _damaged_run(tmp_path) -> Path:
    run = tmp_path / "run"
    with EpisodeStore(run) as store:
        store.add_episodes([sample_episode(b, i, n_steps=5) for b in range(20) for i in range(4)])
    db = run / "episodes.db"
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(3 * page, len(data) - page, 5 * page):   # scribble over some pages
        data[start + 100:start + 600] = os.urandom(500)
    db.write_bytes(bytes(data))
    (run / "config.yaml").write_text(CONFIG)
    return run


@pytest.mark.parametrize("command", [["export", "{run}", "--out", "{out}"],
                                     ["replay", "{run}", "--list", "--no-tokenizer"],
                                     ["train", "--resume", "{run}"]])
def test_a_damaged_store_is_one_line_and_nothing_carries_on(tmp_path, capsys, command):
    run = _damaged_run(tmp_path)
    (run / "checkpoints" / "iter_000001").mkdir(parents=True)
    (run / "checkpoints" / "iter_000001" / "state.pt").write_bytes(b"")
    out = tmp_path / "out.jsonl"
    args = [a.format(run=run, out=out) for a in command]
    assert main(args) == 2
    err = _err(capsys)
    assert "is damaged" in err and "Traceback" not in err, err
    assert not out.exists() and not Path(f"{out}.partial").exists()
