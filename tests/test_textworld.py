"""agentgym/TextWorld-v0: offline generation, caching, seeds/splits, anchors, rewards.

Generates a handful of small games (one per family, a few cheap treasure-hunter and
custom games) into one cache directory shared by the module.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("textworld")

import agentgym  # noqa: E402
from agentgym.contract import REQUIRED_INFO  # noqa: E402
from agentgym.envs.textworld import games  # noqa: E402
from agentgym.envs.textworld.env import (  # noqa: E402
    SPLIT_SEED_BASE, TextWorldConfigError, TextWorldEnv, clean_text, is_meta_command,
    split_seed,
)

# Jericho warns that TextWorld's story files lack its hand-written game bindings; the
# environment never uses those (TextWorld tracks the state itself).
pytestmark = pytest.mark.filterwarnings("ignore::jericho.UnsupportedGameWarning")

ENV_ID = "agentgym/TextWorld-v0"
TH = {"family": "treasure_hunter", "level": 1}  # the cheapest games to generate
FAMILY_KWARGS = {
    "simple": {},
    "custom": {},
    "cooking": {},
    "treasure_hunter": {"level": 1},
}
INFO_TYPES = {
    **REQUIRED_INFO,
    "lost": bool,
    "admissible_actions": list,
    "score": int,
    "max_score": int,
    "task_type": str,
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("tw-cache"))


def make(cache_dir, **kwargs):
    return agentgym.make(ENV_ID, cache_dir=cache_dir, **kwargs)


def check_info(info: dict, family: str) -> None:
    for key, typ in INFO_TYPES.items():
        assert key in info, key
        assert isinstance(info[key], typ), (key, info[key])
    assert info["task_type"] == f"textworld-{family}"
    assert info["task_id"].startswith(f"tw-{family}-")
    assert info["admissible_actions"] == sorted(info["admissible_actions"])


def play(env, actions):
    out = []
    for a in actions:
        out.append(env.step(a))
    return out


# --------------------------------------------------------------------------- families

@pytest.mark.parametrize("family", list(FAMILY_KWARGS))
def test_family_generates_and_walkthrough_wins(cache_dir, family):
    env = make(cache_dir, family=family, **FAMILY_KWARGS[family])
    obs, info = env.reset(seed=0)
    check_info(info, family)
    assert info["won"] is False and info["action_valid"] is True
    assert info["admissible_actions"], "a fresh game always has admissible actions"
    walkthrough = env.unwrapped.walkthrough()
    assert walkthrough and all(isinstance(c, str) for c in walkthrough)
    total, terminated, steps = 0.0, False, 0
    for command in walkthrough:
        obs, reward, terminated, truncated, info = env.step(command)
        check_info(info, family)
        assert info["action_valid"], (command, info["admissible_actions"])
        assert not truncated
        total += reward
        steps += 1
        if terminated:
            break
    assert steps == len(walkthrough)
    assert terminated and info["won"] and not info["lost"]
    assert total == pytest.approx(1.0)  # sparse: 1.0 on the winning step only
    assert info["score"] == info["max_score"] > 0
    assert info["admissible_actions"] == []
    # EpisodeGuard: nothing changes after the end
    _, reward, terminated, _, after = env.step("look")
    assert reward == 0.0 and terminated and after["action_valid"] is False
    env.close()
    env.close()  # twice is fine


def test_dense_reward_is_normalised_score(cache_dir):
    env = make(cache_dir, family="simple", reward="dense")
    _, info = env.reset(seed=0)
    assert info["max_score"] > 1  # tw-simple with rewards=dense has several sub-goals
    rewards = [r for _, r, _, _, _ in play(env, env.unwrapped.walkthrough())]
    assert sum(rewards) == pytest.approx(1.0)
    assert sum(1 for r in rewards if r > 0) > 1
    assert all(r >= 0 for r in rewards)
    # an intermediate reward is one point out of max_score
    first_positive = next(r for r in rewards if r > 0)
    assert first_positive == pytest.approx(1.0 / info["max_score"])
    env.close()


# ------------------------------------------------------------------- seeds and splits

def test_same_seed_same_game_and_deterministic_steps(cache_dir):
    env_a = make(cache_dir, **TH, num_games=3)
    env_b = make(cache_dir, **TH, num_games=3)
    start_a = env_a.reset(seed=1)
    start_b = env_b.reset(seed=1)
    assert start_a == start_b
    # seed -> game index is seed mod num_games
    assert env_b.reset(seed=4) == start_a
    assert env_b.reset(options={"game_index": 1}) == start_a

    actions = ["look", "dance", "inventory"] + list(start_a[1]["admissible_actions"][:3])
    env_b.reset(seed=1)
    assert play(env_a, actions) == play(env_b, actions)
    env_a.close()
    env_b.close()


def test_different_seeds_give_different_games(cache_dir):
    env = make(cache_dir, family="custom")
    obs0, info0 = env.reset(seed=0)
    walk0 = env.unwrapped.walkthrough()
    obs1, info1 = env.reset(seed=1)
    assert info0["task_id"] != info1["task_id"]
    assert obs0 != obs1
    assert walk0 != env.unwrapped.walkthrough()
    env.close()


def test_train_and_eval_seed_ranges_are_disjoint(cache_dir):
    train = TextWorldEnv(split="train", num_games=1000, cache_dir=cache_dir)
    evalu = TextWorldEnv(split="eval", num_games=1000, cache_dir=cache_dir)
    train_seeds = {split_seed("train", i) for i in range(train.num_games)}
    eval_seeds = {split_seed("eval", i) for i in range(evalu.num_games)}
    assert not train_seeds & eval_seeds
    assert max(train_seeds) < SPLIT_SEED_BASE["eval"]

    env_train = make(cache_dir, **TH, split="train", num_games=2)
    env_eval = make(cache_dir, **TH, split="eval", num_games=2)
    obs_t, info_t = env_train.reset(seed=0)
    obs_e, info_e = env_eval.reset(seed=0)
    assert info_t["task_id"].endswith("-seed0")
    assert info_e["task_id"].endswith(f"-seed{SPLIT_SEED_BASE['eval']}")
    assert info_t["task_id"] != info_e["task_id"]
    assert env_eval.unwrapped.game_seed == SPLIT_SEED_BASE["eval"]
    env_train.close()
    env_eval.close()


def test_reset_without_seed_uses_np_random(cache_dir):
    env_a = make(cache_dir, **TH, num_games=2)
    env_b = make(cache_dir, **TH, num_games=2)
    env_a.reset(seed=7)
    env_b.reset(seed=7)
    picks_a = [env_a.reset()[1]["task_id"] for _ in range(4)]
    picks_b = [env_b.reset()[1]["task_id"] for _ in range(4)]
    assert picks_a == picks_b
    env_a.close()
    env_b.close()


def test_reset_after_play_truly_resets(cache_dir):
    env = make(cache_dir, **TH, num_games=2)
    fresh = make(cache_dir, **TH, num_games=2)
    start = env.reset(seed=0)
    play(env, env.unwrapped.walkthrough())          # play to the end
    env.reset(seed=1)                                # another game
    play(env, ["look", "inventory"])
    assert env.reset(seed=0) == start                # back: identical start
    assert fresh.reset(seed=0) == start
    first = start[1]["admissible_actions"][0]
    assert env.step(first) == fresh.step(first)
    env.close()
    fresh.close()


# ------------------------------------------------------------------------------ anchor

def test_anchor_same_state_different_paths(cache_dir):
    env = make(cache_dir, family="simple")
    _, info0 = env.reset(seed=0)
    a0 = info0["anchor"]
    # looking around changes nothing
    for _, _, _, _, info in play(env, ["look", "inventory", "examine king-size bed"]):
        assert info["anchor"] == a0
    # open both bedroom containers in two different orders: same state
    env.reset(seed=0)
    *_, (_, _, _, _, info_ab) = play(env, ["open chest drawer", "open antique trunk"])
    env.reset(seed=0)
    steps = play(env, ["open antique trunk", "look", "open chest drawer"])
    info_ba = steps[-1][4]
    assert info_ab["anchor"] == info_ba["anchor"]
    assert info_ab["anchor"] != a0
    # after a state change, the anchor differs; anchors of all states on the way differ
    assert steps[0][4]["anchor"] not in (a0, info_ba["anchor"])
    env.close()


def test_anchor_movement_round_trip(cache_dir):
    env = make(cache_dir, **TH)
    _, info0 = env.reset(seed=0)
    moves = [a for a in info0["admissible_actions"] if a.startswith("go ")]
    assert moves, "treasure-hunter rooms are connected"
    opposite = {"north": "south", "south": "north", "east": "west", "west": "east"}
    go = moves[0]
    back = "go " + opposite[go.split()[1]]
    _, _, _, _, away = env.step(go)
    assert away["anchor"] != info0["anchor"]
    assert away["anchor"].split("|")[0] != info0["anchor"].split("|")[0]  # room name
    _, _, _, _, home = env.step(back)
    assert home["anchor"] == info0["anchor"]
    env.close()


def test_anchor_includes_pending_parser_question(cache_dir):
    env = make(cache_dir, family="simple")
    _, info0 = env.reset(seed=0)
    obs, _, _, _, info = env.step("open")  # the bedroom has several things to open
    assert obs.startswith("What do you want to open")
    assert info["action_valid"] is False
    assert info["anchor"] != info0["anchor"]  # the next input answers the question
    _, _, _, _, info = env.step("look")
    assert info["anchor"] == info0["anchor"]
    env.close()


# -------------------------------------------------------------------- text and validity

def test_observations_are_clean(cache_dir):
    env = make(cache_dir, family="simple")
    obs, info = env.reset(seed=0)
    objective = env.unwrapped.objective
    assert objective and obs.startswith(objective)  # objective first, no banner
    for o in [obs] + [s[0] for s in play(env, ["look", "dance", "go east"])]:
        assert o == o.strip() and o
        assert "$$" not in o and "________" not in o
        assert "\n>" not in o and not o.startswith(">")
        assert "=-0/" not in o  # no status line
        assert "\n\n\n" not in o
    env.reset(seed=0)
    final = play(env, env.unwrapped.walkthrough())[-1][0]
    assert "*** The End ***" in final and "RESTART" not in final
    env.close()


def test_clean_text_unit():
    raw = ("\n\n  ____  \n | $$ \\ \n\nGoal text.\n\n-= Room =-\nA room.\n\n\n\n"
           ">                     -= Room =-0/1")
    assert clean_text(raw) == "Goal text.\n\n-= Room =-\nA room."


def test_action_valid_and_meta_commands(cache_dir):
    env = make(cache_dir, **TH)
    _, info0 = env.reset(seed=0)
    admissible = info0["admissible_actions"]
    obs, reward, terminated, _, info = env.step("dance")
    assert info["action_valid"] is False and "verb" in obs  # the game's own reply
    assert info["anchor"] == info0["anchor"]
    _, _, _, _, info = env.step("  LOOK  ")  # normalised before the admissible check
    assert info["action_valid"] is True
    for meta in ["restart", "quit", "undo", "save", "look. quit", "tw-print max_score",
                 "again", "brief"]:
        obs, reward, terminated, _, info = env.step(meta)
        assert info["action_valid"] is False and reward == 0 and not terminated, meta
        assert info["anchor"] == info0["anchor"]
    assert is_meta_command("Take key then UNDO") and not is_meta_command("take old key")
    _, _, _, _, info = env.step(admissible[0].upper())  # case does not matter
    assert info["action_valid"] is True
    env.close()


def test_a_synonym_the_game_acts_on_is_valid(cache_dir):
    """The game's own verdict: "get X" for the admissible "take X" wins, so it was valid;
    "x X" (examine) is understood but changes nothing, so it stays not valid."""
    env = make(cache_dir, **TH)
    env.reset(seed=0)
    (command,) = env.unwrapped.walkthrough()
    assert command.startswith("take ")
    thing = command.removeprefix("take ")
    _, _, _, _, info = env.step(f"x {thing}")
    assert info["action_valid"] is False
    assert f"get {thing}" not in info["admissible_actions"]
    _, reward, terminated, _, info = env.step(f"get {thing}")
    assert terminated and info["won"] and reward == 1.0 and info["action_valid"] is True
    env.close()


# ------------------------------------------------------------------------------ cache

def _game_files(cache_dir):
    return sorted(Path(cache_dir).glob("*/seed-*/game.z8"))


def test_cache_is_reused(cache_dir):
    env = make(cache_dir, **TH)
    env.reset(seed=0)
    files = _game_files(cache_dir)
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    before = dict(games.stats)
    again = make(cache_dir, **TH)
    again.reset(seed=0)
    assert games.stats["generated"] == before["generated"]
    assert games.stats["cache_hits"] > before["cache_hits"]
    assert {p: p.stat().st_mtime_ns for p in _game_files(cache_dir)} == mtimes
    # no half-written games or temporary directories left behind
    assert not list(Path(cache_dir).glob("*/.tmp-*"))
    for p in files:
        assert (p.parent / "meta.json").is_file() and (p.parent / "game.json").is_file()
    env.close()
    again.close()


def test_cache_dir_from_environment_variable(monkeypatch, cache_dir):
    monkeypatch.setenv("AGENTGYM_CACHE", cache_dir)
    env = TextWorldEnv(**TH)
    assert env.cache_dir == os.path.join(cache_dir, "textworld")


def test_parallel_threads_generate_a_game_once(cache_dir):
    params = games.resolve_params("treasure_hunter", {"level": 1})
    seed = 77
    before = games.stats["generated"]
    results, errors = [], []

    def work():
        try:
            results.append(games.ensure_game("treasure_hunter", params, seed, cache_dir))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert games.stats["generated"] == before + 1
    assert len({r.directory for r in results}) == 1


def test_parallel_processes_generate_safely(tmp_path):
    script = textwrap.dedent(f"""
        from agentgym.envs.textworld import games
        p = games.resolve_params("treasure_hunter", {{"level": 1}})
        g = games.ensure_game("treasure_hunter", p, 5, {str(tmp_path)!r})
        print(games.stats["generated"], g.directory)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    generated = [int(o[0].split()[0]) for o in outs]
    directories = {o[0].split()[1] for o in outs}
    assert sum(generated) == 1  # the per-game lock: the second process found the first's game
    assert len(directories) == 1
    assert len(_game_files(tmp_path)) == 1
    assert not list(tmp_path.glob("*/.tmp-*"))


# ------------------------------------------------------------------------------ config

def test_bad_configuration_is_a_clear_error(cache_dir):
    with pytest.raises(TextWorldConfigError, match="family"):
        TextWorldEnv(family="zork", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="do not apply"):
        TextWorldEnv(family="simple", level=3, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="level"):
        TextWorldEnv(family="treasure_hunter", level=99, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="split"):
        TextWorldEnv(split="test", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="reward"):
        TextWorldEnv(reward="shaped", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="take must be <= recipe"):
        TextWorldEnv(family="cooking", recipe=1, take=2, cache_dir=cache_dir)
    env = TextWorldEnv(**TH, num_games=2, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="game_index"):
        env.reset(options={"game_index": 5})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"level": 2})
    assert env.walkthrough() is None  # before reset
    env.close()


def test_spaces_and_registration(cache_dir):
    env = make(cache_dir, **TH)
    assert isinstance(env.unwrapped, TextWorldEnv)
    assert env.observation_space == agentgym.TextSpace()
    assert env.action_space == agentgym.TextSpace()
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()
