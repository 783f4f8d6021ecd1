"""The agentgym command as a user runs it (subprocesses, real TextWorld games)."""

import os
import subprocess
import sys

import pytest

import agentgym
from agentgym.cli import parse_pairs

pytestmark = pytest.mark.filterwarnings("ignore::jericho.UnsupportedGameWarning")
GAME = ["family=custom", "world_size=2", "nb_objects=3", "quest_length=2"]


def _agentgym(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "agentgym.cli", *args], input=stdin,
                          capture_output=True, text=True, env=dict(os.environ, COLUMNS="200"),
                          timeout=300)


def test_envs_lists_textworld():
    out = _agentgym("envs")
    assert out.returncode == 0
    assert "agentgym/TextWorld-v0" in out.stdout


def test_check_passes_on_textworld():
    out = _agentgym("check", "agentgym/TextWorld-v0", *GAME, "--episodes", "2", "--agent", "scripted")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASSED" in out.stdout and "won 2" in out.stdout


def test_play_wins_by_typing_the_walkthrough():
    env = agentgym.make("agentgym/TextWorld-v0", **parse_pairs(GAME))
    env.reset(seed=3)
    walkthrough = env.unwrapped.walkthrough()
    env.close()
    out = _agentgym("play", "agentgym/TextWorld-v0", *GAME, "--seed", "3",
                    stdin="\n".join(walkthrough) + "\n")
    assert out.returncode == 0, out.stderr
    assert "You won!" in out.stdout
    assert f"in {len(walkthrough)} steps" in out.stdout


def test_play_numbers_pick_admissible_actions_and_eof_stops():
    out = _agentgym("play", "agentgym/TextWorld-v0", *GAME, "--seed", "3", stdin="1\n")
    assert out.returncode == 0
    assert "stopped" in out.stdout


def test_unknown_env_is_one_clear_line():
    out = _agentgym("check", "agentgym/TextWorl-v0")
    assert out.returncode == 2
    assert "Did you mean 'agentgym/TextWorld-v0'" in out.stderr
    assert "Traceback" not in out.stderr
