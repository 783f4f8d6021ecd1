"""ScienceWorld on the real simulator (slow: a JVM): contract, gold walkthroughs, rewards,
failure, invalid and ambiguous actions, splits, engine reuse and restart."""

import shutil

import pytest

import agentgym
from agentgym.checker import check_env
from agentgym.envs.scienceworld.engine import EngineError

pytest.importorskip("scienceworld")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None,
                       reason="needs Java (apt-get install default-jre-headless)"),
]

ENV_ID = "agentgym/ScienceWorld-v0"
SEVERAL = "find-non-living-thing,lifespan-longest-lived,chemistry-mix-paint-secondary-color," \
          "power-component"


@pytest.fixture(scope="module")
def env():
    """One environment (one JVM) for the module; each test resets the task it needs."""
    env = agentgym.make(ENV_ID, task="suite:all", max_episode_steps=40)
    yield env
    env.close()


def _play(env, actions):
    rewards, out = [], None
    for action in actions:
        out = env.step(action)
        rewards.append(out[1])
        if out[2] or out[3]:
            break
    return rewards, out


@pytest.mark.parametrize("agent", ["scripted", "random"])
def test_agentgym_check_passes_for_several_task_types(agent):
    env = agentgym.make(ENV_ID, task=SEVERAL, max_episode_steps=25)
    report = check_env(env, episodes=4, agent=agent)
    assert report.ok, [(r.name, r.detail) for r in report.failures]
    if agent == "scripted":  # seeds 0-3: one episode of each task type, each won
        assert report.wins == 4 and report.mean_reward == pytest.approx(1.0)


def test_the_gold_path_wins_and_its_rewards_add_up_to_one(env):
    obs, info = env.reset(options={"task": "chemistry-mix-paint-secondary-color", "variation": 1})
    assert info["task_id"] == "chemistry-mix-paint-secondary-color:1"
    assert info["task"].startswith("Your task is to")
    assert obs.startswith("This room is called") and "In your inventory" in obs
    plan = env.unwrapped.walkthrough()
    rewards, (obs, reward, terminated, truncated, info) = _play(env, plan)
    assert terminated and not truncated and info["won"] and not info["lost"]
    assert info["score"] == 100 and sum(rewards) == pytest.approx(1.0)
    assert all(0.0 <= r <= 1.0 for r in rewards) and any(0 < r < 1 for r in rewards)
    assert info["admissible_actions"] == []
    after = env.step("look around")
    assert after[4]["action_valid"] is False and after[2]


def test_focusing_on_the_wrong_thing_loses(env):
    env.reset(options={"task": "find-animal", "variation": 0})
    obs, reward, terminated, truncated, info = env.step("focus on air")
    assert terminated and info["lost"] and not info["won"]
    assert reward == 0.0 and info["score"] < 0 and info["action_valid"]


def test_invalid_and_refused_actions_change_nothing(env):
    obs0, info0 = env.reset(options={"task": "boil", "variation": 0})
    obs, reward, terminated, truncated, info = env.step("fly to the moon")
    assert obs == "No known action matches that input."
    assert not info["action_valid"] and info["invalid_reason"] and reward == 0.0
    assert not terminated and info["anchor"] == info0["anchor"]
    obs, reward, terminated, truncated, info = env.step("reset task")
    assert not info["action_valid"] and "reset()" in info["invalid_reason"]
    assert env.step("look around")[0] == obs0.split("\nIn your inventory")[0]


def test_an_ambiguous_request_lists_the_number_choices(env):
    env.reset(options={"task": "boil", "variation": 0})
    _play(env, ["open door to kitchen", "go to kitchen"])
    obs, _, _, _, info = env.step("pick up substance")
    assert obs.startswith("Ambiguous request") and info["action_valid"]
    assert info["anchor"].endswith("|choose")
    assert info["admissible_actions"] == [str(i) for i in range(len(info["admissible_actions"]))]
    assert len(info["admissible_actions"]) >= 2
    soap = next(line.split(":")[0] for line in obs.splitlines() if "pick up soap" in line)
    obs, _, _, _, info = env.step(soap)
    assert info["action_valid"] and not info["anchor"].endswith("|choose")
    assert obs == "You move the soap to the inventory."


def test_admissible_actions_are_the_engines_bounded_and_sorted(env):
    _, info = env.reset(options={"task": "boil", "variation": 0})
    _, _, _, _, info = _play(env, ["open door to kitchen", "go to kitchen"])[1]
    listed = info["admissible_actions"]
    engine_valid = {text for text, _ in env.unwrapped._holder["engine"].valid_actions()}
    assert len(engine_valid) > 1000 and len(listed) == 100
    assert listed == sorted(listed) and set(listed) <= engine_valid
    for action in ("go to hallway", "look around", "inventory", "open fridge", "activate stove"):
        assert action in listed
    for action in listed[:5]:  # each listed action is accepted by the engine
        env.reset(options={"task": "boil", "variation": 0})
        _play(env, ["open door to kitchen", "go to kitchen"])
        assert env.step(action)[4]["action_valid"], action


def test_official_splits_partition_the_variations_and_seeds_cycle_the_tasks():
    env = agentgym.make(ENV_ID, task="boil,find-plant,identify-life-stages-2", split="test")
    try:
        unwrapped = env.unwrapped
        engine = unwrapped._engine()
        for task in unwrapped.tasks:
            splits = engine.splits(task)
            merged = sorted(v for vs in splits.values() for v in vs)
            assert merged == list(range(engine.max_variations(task)))  # disjoint, complete
            assert len(splits["train"]) > len(splits["dev"]) > 0 and splits["test"]
            assert unwrapped.variations(task) == splits["test"]
        test = {task: unwrapped.variations(task) for task in unwrapped.tasks}
        assert [env.reset(seed=s)[1]["task_id"] for s in (0, 1, 2, 3)] == [
            f"boil:{test['boil'][0]}", f"find-plant:{test['find-plant'][0]}",
            f"identify-life-stages-2:{test['identify-life-stages-2'][0]}",
            f"boil:{test['boil'][1]}"]
        # the per-process split table is shared: these environments start no JVM
        train = agentgym.make(ENV_ID, task="boil", max_variations=2).unwrapped
        assert train.variations("boil") == engine.splits("boil")["train"][:2] == [0, 1]
        assert "engine" not in train._holder
    finally:
        env.close()


def test_same_seed_same_state_and_a_walkthrough_mid_episode_keeps_it(env):
    obs_a, info_a = env.reset(seed=7)
    obs_b, info_b = env.reset(seed=7)
    assert (obs_a, info_a) == (obs_b, info_b)
    plan = env.unwrapped.walkthrough()
    first = [env.step(a) for a in plan[:3]]
    env.reset(seed=7)
    assert [env.step(a) for a in plan[:2]] == first[:2]
    env.unwrapped._gold.clear()  # plan again now: the engine reloads, then replays 2 steps
    assert env.unwrapped.walkthrough() == plan
    assert env.step(plan[2]) == first[2]


def test_the_same_episode_and_actions_give_the_same_text_in_any_jvm(env):
    """The simulator's object names and gold paths depend on identity-hash order; the
    engine's JVM options make them the same in a fresh JVM and in one with a history."""
    def record(e):
        e.reset(options={"task": "grow-fruit", "variation": 93})
        plan = e.unwrapped.walkthrough()
        steps = [e.step(a) for a in plan[:10]]
        return plan, [(o, r, i["anchor"], i["admissible_actions"]) for o, r, _, _, i in steps]

    for task, variation in (("boil", 21), ("find-plant", 225)):  # history for this JVM
        env.reset(options={"task": task, "variation": variation})
        env.unwrapped.walkthrough()
    fresh = agentgym.make(ENV_ID, task="grow-fruit")
    try:
        assert record(fresh) == record(env)
    finally:
        fresh.close()


def test_one_jvm_serves_every_episode_and_a_dead_one_is_replaced(env):
    env.reset(options={"task": "melt", "variation": 2})
    engine = env.unwrapped._holder["engine"]
    env.reset(options={"task": "find-plant", "variation": 3})
    assert env.unwrapped._holder["engine"] is engine and engine.alive()
    engine.process.kill()
    engine.process.wait()
    with pytest.raises(EngineError, match="stopped answering .the JVM exited"):
        env.step("look around")
    obs, info = env.reset(options={"task": "find-plant", "variation": 3})
    fresh = env.unwrapped._holder["engine"]
    assert fresh is not engine and fresh.alive() and info["task_id"] == "find-plant:3"


def test_bad_reset_options_are_one_clear_error(env):
    with pytest.raises(agentgym.ConfigError, match=r"variation must be an integer in \[0, 30\)"):
        env.reset(options={"task": "boil", "variation": 30})
    with pytest.raises(agentgym.ConfigError, match="accepts task, variation"):
        env.reset(options={"game_index": 1})
