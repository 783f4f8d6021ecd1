"""One trainer per run directory; restarts after a run that never checkpointed."""

import os
import subprocess
import sys

import pytest

import agentgym
from agentgym.config import load_config
from agentgym.rundir import RunDirInUse, RunDirLock
from agentgym.store import EpisodeStore
from agentgym.trainer import Trainer
from tests.toy_envs import GuessEnv

agentgym.register("test/LockGuess-v0", entry_point=GuessEnv, max_episode_steps=3)

BASE = ["env.id=test/LockGuess-v0", "model.name=tiny-smollm2", "rollout.tasks_per_iteration=2",
        "rollout.group_size=2", "rollout.max_new_tokens=4", "rollout.think=false",
        "trainer.micro_batch=4", "eval.tasks=0"]


def _config(run_dir, *extra):
    return load_config(None, BASE + [f"logging.run_dir={run_dir}", *extra])


def test_a_second_trainer_is_refused_with_the_holders_pid(tmp_path):
    run = tmp_path / "run"
    with RunDirLock(run):
        (run / "config.yaml").write_text("the live run's config\n")
        with pytest.raises(RunDirInUse, match=f"in use by another trainer \\(PID {os.getpid()}\\)"):
            Trainer(_config(run, "trainer.iterations=1"))
        assert (run / "config.yaml").read_text() == "the live run's config\n"
    # released: the directory is free again
    with RunDirLock(run):
        pass


def test_cli_resume_into_a_live_run_is_one_line(tmp_path):
    run = tmp_path / "run"
    with RunDirLock(run):
        # a config that passes train's checks in a fresh interpreter (which has no test/ ids)
        (run / "config.yaml").write_text("env:\n  id: agentgym/TextWorld-v0\n"
                                         "model:\n  name: tiny-smollm2\n")
        done = subprocess.run([sys.executable, "-m", "agentgym.cli", "train", "--resume", str(run)],
                              capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, COLUMNS="500"))
    assert done.returncode == 2
    assert f"in use by another trainer (PID {os.getpid()})" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_lock_dies_with_its_holder(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from agentgym.rundir import RunDirLock; "
         f"RunDirLock({str(run)!r}).acquire(); print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(RunDirInUse, match=f"PID {holder.pid}"):
            RunDirLock(run).acquire()
        holder.kill()            # kill -9: no clean-up code runs
        holder.wait(timeout=30)
        with RunDirLock(run):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_run_that_died_before_its_first_checkpoint_restarts_in_place(tmp_path):
    run = tmp_path / "run"
    cfg = _config(run, "trainer.iterations=2", "trainer.checkpoint_every=2")
    crashed = Trainer(cfg)
    try:
        crashed.iteration(1)             # episodes stored, then the process "dies"
    finally:
        crashed.close()
    with EpisodeStore(run / "episodes.db", readonly=True) as store:
        assert store.count() == 2 * 2
    again = Trainer(_config(run, "trainer.iterations=1"))  # used to fail with IntegrityError
    try:
        again.train()
    finally:
        again.close()
    with EpisodeStore(run / "episodes.db", readonly=True) as store:
        assert store.count() == 2 * 2 and store.iterations() == [1]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_without_a_checkpoint_starts_the_run_again(tmp_path):
    run = tmp_path / "run"
    failed = Trainer(_config(run, "trainer.iterations=1"))   # e.g. failed right after start-up
    failed.close()
    resumed = Trainer(_config(run, "trainer.iterations=1"), resume=True)
    try:
        assert resumed.start_iteration == 1
        resumed.train()
    finally:
        resumed.close()
    assert (run / "checkpoints" / "iter_000001" / "state.pt").is_file()
