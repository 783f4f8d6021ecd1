"""`agentgym replay --list/--episode/--json` and `--verify` re-play checks."""

from __future__ import annotations

import json

import pytest

import agentgym
from agentgym.cli import main
from agentgym.replay.run import Run
from agentgym.replay.verify import verify_episode, verify_run
from agentgym.store import EpisodeStore
from tests.replay_runs import ENV_ID, make_run, play
from tests.toy_envs import GuessEnv


class DriftingGuessEnv(GuessEnv):
    """Deterministic reset, but a reward that depends on how often it was stepped before."""

    calls = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        DriftingGuessEnv.calls += 1
        return obs, reward + (0.5 if DriftingGuessEnv.calls > 2 else 0.0), terminated, truncated, info


agentgym.register("test/DriftingGuess-v0", entry_point=DriftingGuessEnv, max_episode_steps=4)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("replay") / "run")


def test_list_renders_a_table_and_json(run_dir, capsys):
    assert main(["replay", str(run_dir), "--list", "--outcome", "lost", "--split", "train",
                 "--iteration", "1"]) == 0
    out = capsys.readouterr().out
    with EpisodeStore(run_dir, readonly=True) as store:
        lost = store.query(won=False, split="train", iteration=1, limit=None)
    assert len(lost) == 3 and "episodes 1–3 of 3" in out
    assert all(s.episode_id in out for s in lost) and "train-1-0-1" not in out
    assert main(["replay", str(run_dir), "--list", "--json", "--limit", "2", "--offset", "1",
                 "--order", "episode"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 13
    assert [e["episode_id"] for e in data["episodes"]] == ["train-1-0-1", "train-1-0-2"]


def test_episode_renders_steps_and_json(run_dir, capsys):
    assert main(["replay", str(run_dir), "--episode", "train-1-0-2"]) == 0
    out = capsys.readouterr().out
    assert "episode train-1-0-2" in out and "(none parsed)" in out
    assert "Guess a number from 1 to 5." in out
    assert "step 0.100" in out  # advantage parts, whatever their names
    # each step reads in the order it happened: observation, output and action, result
    step = out[out.index("step 1"):]
    assert step.index("Guess a number") < step.index("action: guess 3") < step.index("result: ")
    assert main(["replay", str(run_dir), "--episode", "train-1-0-2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["action"] for s in data["steps"]] == [None, "guess 3", "guess 2", "guess 2"]
    assert {"episode_id": "train-1-0-0", "step": 0} in data["steps"][0]["anchor_group"]


def test_a_bare_store_file_works_too(tmp_path, capsys):
    store_file = tmp_path / "eval.db"
    with EpisodeStore(store_file) as store:
        store.add_episodes([play(5, ["guess 1", "guess 2", "guess 3", "guess 4"], iteration=0,
                                 split="eval", group="eval-0-0", member=0)])
    assert main(["replay", str(store_file), "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 1


def test_bad_input_gets_one_clear_error(run_dir, tmp_path, capsys):
    assert main(["replay", str(run_dir), "--episode", "nope"]) == 2
    assert main(["replay", str(tmp_path / "missing"), "--list"]) == 2
    assert main(["replay", str(run_dir), "--list", "--iteration", "x"]) == 2
    assert main(["replay", str(run_dir), "--list", "--order", "colour"]) == 2
    err = capsys.readouterr().err
    assert "cannot order episodes by 'colour'" in err
    assert "no episode 'nope'" in err and "no run directory" in err
    assert "iteration must be a number" in err and "Traceback" not in err


def test_verify_passes_on_a_deterministic_environment(run_dir, capsys):
    assert main(["replay", str(run_dir), "--verify", "--sample", "50"]) == 0
    out = capsys.readouterr().out
    assert "13/13 episodes re-played identically" in out
    assert "stopped at step 3" in out  # the episode whose stored step failed
    assert main(["replay", str(run_dir), "--verify", "--episode", "eval-2-0-0", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["steps_checked"] == 4


def test_verify_reports_each_step_that_differs(run_dir, tmp_path, capsys):
    episode = play(10, ["guess 3", "guess 1", "guess 4"], iteration=1, split="train",
                   group="g", member=0)
    assert episode.won and episode.steps[2].reward == 1.0
    episode.steps[1].observation = "Something else."
    episode.steps[2].reward = 0.75
    episode.final_observation = "Not what happened."
    result = verify_episode(episode, {}, 4)
    found = [(d.step, d.field) for d in result.differences]
    assert found == [(0, "observation"), (2, "reward"), (2, "observation")]
    assert result.differences[0].replayed == "Higher." and result.steps_checked == 3

    copy = tmp_path / "tampered"
    copy.mkdir()
    (copy / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    with EpisodeStore(copy) as store:
        store.add_episodes([episode])
    assert main(["replay", str(copy), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "3 differ" in out and "step 2 reward: stored 0.75 | re-played 1.0" in out


def test_verify_finds_an_environment_that_is_not_deterministic(tmp_path):
    episode = play(10, ["guess 1", "guess 2", "guess 4"], iteration=1, split="train",
                   group="g", member=0)
    assert episode.won
    episode.env_id = "test/DriftingGuess-v0"
    with EpisodeStore(tmp_path) as store:
        store.add_episodes([episode])
    DriftingGuessEnv.calls = 0
    with Run(tmp_path, tokenizer=False) as run:
        [result] = verify_run(run, [episode.episode_id])
    assert [(d.step, d.field, d.stored, d.replayed) for d in result.differences] == [
        (2, "reward", 1.0, 1.5)]
    assert ENV_ID != episode.env_id
