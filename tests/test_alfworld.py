"""ALFWorld: scenes, task generation, suites, the official layout, the environment."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil

import pytest

# find_spec, not an import: importing alfworld rewrites $ALFWORLD_DATA
if importlib.util.find_spec("alfworld") is None:
    pytest.skip("needs the alfworld package", allow_module_level=True)
pytest.importorskip("fast_downward")

from agentgym.envs.alfworld import TASK_TYPES, scenes, suite, tasks
from agentgym.envs.alfworld.env import ALFWorldConfigError, ALFWorldEnv

import agentgym

# Games of the small suites the slow tests share: train 0..5 is one game of each type.
SMALL = 6


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("alfworld-cache")
    return str(root)


@pytest.fixture(scope="module")
def small_suite(cache):
    return suite.ensure_suite("train", SMALL, cache)


# ------------------------------------------------------------------------ fast tests

def test_scenes_come_from_the_package_data():
    assert len(scenes.available_scenes()) == 120
    kitchen = scenes.load_scene(10)
    classes = kitchen.receptacle_classes()
    assert {"Fridge", "Microwave", "SinkBasin", "Cabinet"} <= classes
    assert "Apple" in kitchen.object_classes or "Tomato" in kitchen.object_classes
    # every object class fits some receptacle of the scene, by ALFWorld's table
    for cls in kitchen.object_classes:
        assert kitchen.holders(cls), cls
    assert set(scenes.UNSEEN_SCENES).isdisjoint(scenes.SEEN_SCENES)


def test_build_game_is_deterministic_and_places_targets_away_from_the_goal():
    a = tasks.build_game(10, "pick_heat_then_place_in_recep", random.Random(3))
    b = tasks.build_game(10, "pick_heat_then_place_in_recep", random.Random(3))
    assert a.problem == b.problem and a.sentence == b.sentence
    assert a.sentence.split()[2] == "hot" or a.sentence.startswith("heat some")
    recep_ids = {r.id for r in scenes.load_scene(10).receptacles if r.cls == a.recep}
    targets = [o for o in a.objects if o.startswith(a.obj + "_bar_")]
    assert targets and all(a.objects[o] not in recep_ids for o in targets)
    assert f"(objectType ?o {a.obj}Type)" in a.problem and "(heatable ?o)" in a.problem


def test_task_types_only_in_their_rooms():
    with pytest.raises(tasks.NoTaskError):
        tasks.build_game(301, "pick_heat_then_place_in_recep", random.Random(0))  # a bedroom
    with pytest.raises(ValueError, match="unknown task type"):
        tasks.build_game(10, "slice_things", random.Random(0))


def test_seen_splits_partition_task_signatures():
    seen = [suite.spec_for("eval_seen", i)[0] for i in range(6)]
    train = [suite.spec_for("train", i)[0] for i in range(6)]
    assert all(tasks.signature_split(s.signature) == "eval_seen" for s in seen)
    assert all(tasks.signature_split(s.signature) == "train" for s in train)
    unseen = [suite.spec_for("eval_unseen", i)[0] for i in range(6)]
    assert all(s.scene in scenes.UNSEEN_SCENES for s in unseen)
    assert [s.task_type for s in unseen] == list(TASK_TYPES)


@pytest.mark.slow
def test_names_match_alfworlds_demangler(monkeypatch, tmp_path):
    # importing alfworld rewrites $ALFWORLD_DATA: monkeypatch restores it afterwards
    monkeypatch.setenv("ALFWORLD_DATA", os.environ.get("ALFWORLD_DATA") or str(tmp_path))
    from agentgym.envs.alfworld.engine import demangled_names
    from alfworld.agents.utils.misc import Demangler
    from textworld.generator.game import EntityInfo

    ids = ["cabinet_bar__plus_00_dot_68", "cabinet_bar__minus_01_dot_18", "apple_bar_3",
           "sink_bar__minus_01_dot_90_bar_sinkbasin", "agent1", "loc_bar_start"]
    infos = {i: EntityInfo(i, "x") for i in ids}
    reference = Demangler(game_infos=infos)
    assert demangled_names(ids) == {i: reference.demangle_alfred_name(i) for i in ids}


def test_bad_arguments_get_clear_errors(tmp_path):
    with pytest.raises(ALFWorldConfigError, match="split must be one of"):
        ALFWorldEnv(split="test")
    with pytest.raises(ALFWorldConfigError, match="anchor must be one of"):
        ALFWorldEnv(anchor="facts")
    with pytest.raises(ALFWorldConfigError, match="no json_2.1.1/train folder"):
        ALFWorldEnv(data_dir=str(tmp_path))
    env = ALFWorldEnv(num_games=3, cache_dir=str(tmp_path))
    with pytest.raises(ALFWorldConfigError, match="game_index"):
        env.reset(options={"game_index": 3})


def test_registered_with_the_reference_prompt():
    from agentgym.prompting import template_for

    info = agentgym.env_info("agentgym/ALFWorld-v0")
    assert info.max_episode_steps == 50
    template = template_for("agentgym/ALFWorld-v0")
    assert "<think>" in template.instruction_think and "<action>" in template.instruction_think


# ------------------------------------------------------------------------ slow tests

@pytest.mark.slow
def test_suite_is_cached_and_every_game_is_won_by_its_walkthrough(cache, small_suite):
    assert [g.task_type for g in small_suite] == list(TASK_TYPES)
    before = dict(suite.stats)
    again = suite.ensure_suite("train", SMALL, cache)
    assert again == small_suite and suite.stats["generated"] == before["generated"]
    env = ALFWorldEnv(split="train", num_games=SMALL, cache_dir=cache)
    try:
        for i in range(SMALL):
            obs, info = env.reset(options={"game_index": i})
            assert obs.startswith("You are in the middle of a room")
            assert info["task_type"] == TASK_TYPES[i] and info["task"] in obs
            assert env.walkthrough() == env.expert_plan(initial=True)
            for command in env.walkthrough():
                assert command in info["admissible_actions"]
                obs, reward, terminated, _, info = env.step(command)
            assert terminated and reward == 1.0 and info["won"]
    finally:
        env.close()


@pytest.mark.slow
def test_env_steps_invalid_commands_and_anchors(cache, small_suite):
    env = agentgym.make("agentgym/ALFWorld-v0", num_games=SMALL, cache_dir=cache)
    try:
        obs, info = env.reset(seed=SMALL)  # seed 6 -> game 0
        assert info["task_id"] == "alfworld-train-0" and info["anchor"] == obs
        obs2, reward, terminated, _, info2 = env.step("fly to the moon")
        assert obs2 == "Nothing happens." and not info2["action_valid"] and reward == 0
        assert not terminated and info2["anchor"] == "Nothing happens."
        assert info2["admissible_actions"] == info["admissible_actions"]
        first = info["admissible_actions"][0]
        _, _, _, _, info3 = env.step("  " + first.upper() + " ")
        assert info3["action_valid"]
    finally:
        env.close()
    state_env = ALFWorldEnv(num_games=SMALL, cache_dir=cache, anchor="state")
    try:
        _, info = state_env.reset(seed=0)
        assert "atlocation(agent1,loc_bar_start)" in info["anchor"]
    finally:
        state_env.close()


@pytest.mark.slow
def test_official_layout_is_played_without_code_change(cache, small_suite, tmp_path, monkeypatch):
    data = tmp_path / "alfworld_data"
    src = suite.suite_root(cache) / suite.OFFICIAL_ROOT
    for game in small_suite[:3]:
        rel = game.path.parent.relative_to(src)
        shutil.copytree(game.path.parent, data / suite.OFFICIAL_ROOT / rel)
    # what AlfredTWEnv skips: a movable task, and a game not marked solvable
    skipped = data / suite.OFFICIAL_ROOT / "train" / "pick_and_place_with_movable_recep-X-None-Y-1" / "t"
    shutil.copytree(small_suite[0].path.parent, skipped)
    unsolvable = data / suite.OFFICIAL_ROOT / "train" / "pick_and_place_simple-Z-None-Y-1" / "t"
    shutil.copytree(small_suite[0].path.parent, unsolvable)
    game_file = unsolvable / "game.tw-pddl"
    game_file.write_text(json.dumps(dict(json.loads(game_file.read_text()), solvable=False)))

    monkeypatch.setenv("ALFWORLD_DATA", str(data))
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path / "cache"))  # translations go here
    env = agentgym.make("agentgym/ALFWorld-v0")
    try:
        assert env.unwrapped.num_games == 3
        won = 0
        for i in range(3):
            _, info = env.reset(options={"game_index": i})
            assert info["task_id"].startswith("alfworld/train/")
            for command in env.unwrapped.walkthrough():
                _, _, _, _, info = env.step(command)
            won += info["won"]
        assert won == 3
    finally:
        env.close()
    assert any((tmp_path / "cache" / "alfworld" / "sas").iterdir())
    with pytest.raises(ALFWorldConfigError, match="valid_seen"):
        agentgym.make("agentgym/ALFWorld-v0", split="eval_seen")


@pytest.mark.slow
def test_agentgym_check_passes(cache, small_suite):
    from agentgym.checker import check_env

    env = agentgym.make("agentgym/ALFWorld-v0", num_games=SMALL, cache_dir=cache)
    report = check_env(env, env_id="agentgym/ALFWorld-v0", episodes=3, agent="scripted")
    assert report.ok, [(r.name, r.detail) for r in report.failures]
    assert report.wins == 3


@pytest.mark.slow
def test_baselines_expert_wins_everything_random_rarely(cache, small_suite):
    from agentgym.envs.alfworld import baselines

    expert = baselines.play("expert", "train", SMALL, cache)
    assert sorted(expert) == sorted(TASK_TYPES)
    assert all(wins == n == 1 for n, wins in expert.values())
    rand = baselines.play("random", "train", SMALL, cache, max_episode_steps=10)
    assert sum(n for n, _ in rand.values()) == SMALL
