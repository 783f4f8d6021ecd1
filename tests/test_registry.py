import gymnasium
import pytest

import agentgym
from agentgym import AgentGymError, UnknownEnvError
from tests.toy_envs import GuessEnv


def test_register_class_and_make_runs_like_builtin():
    agentgym.register("test/Guess-v0", entry_point=GuessEnv, max_episode_steps=4)
    env = agentgym.make("test/Guess-v0")
    obs, info = env.reset(seed=1)
    assert obs.startswith("Guess")
    assert {"task_id", "won", "action_valid", "anchor", "admissible_actions"} <= set(info)
    assert "test/Guess-v0" in [e.id for e in agentgym.registered_envs()]
    assert agentgym.env_info("test/Guess-v0").description.startswith("Guess the hidden number")


def test_register_string_entry_point_and_gymnasium_make():
    agentgym.register("test/GuessStr-v0", entry_point="tests.toy_envs:GuessEnv",
                      kwargs={"high": 3}, max_episode_steps=2)
    env = gymnasium.make("test/GuessStr-v0")
    _, info = env.reset(seed=0)
    assert info["admissible_actions"] == ["guess 1", "guess 2", "guess 3"]
    # the guard is applied by gymnasium.make too: the step limit truncates
    env.step("guess 9")
    *_, truncated, _ = env.step("guess 9")
    assert truncated


def test_make_overrides_kwargs_and_step_limit():
    agentgym.register("test/GuessLimit-v0", entry_point=GuessEnv, max_episode_steps=10)
    env = agentgym.make("test/GuessLimit-v0", high=2, max_episode_steps=1)
    _, info = env.reset(seed=0)
    assert len(info["admissible_actions"]) == 2
    _, _, terminated, truncated, _ = env.step("nonsense")
    assert truncated and not terminated


def test_unknown_id_names_close_matches():
    with pytest.raises(UnknownEnvError) as e:
        agentgym.make("agentgym/TextWorld-v1")
    assert "agentgym/TextWorld-v0" in str(e.value)
    with pytest.raises(UnknownEnvError) as e:
        agentgym.make("textworld")
    assert "agentgym/TextWorld-v0" in str(e.value)


def test_unknown_option_is_a_clear_error():
    agentgym.register("test/GuessOpt-v0", entry_point=GuessEnv)
    with pytest.raises(AgentGymError, match="does not take option hgh.*high"):
        agentgym.make("test/GuessOpt-v0", hgh=3)


def test_guard_rejects_bad_actions_and_actions_after_the_end():
    agentgym.register("test/GuessGuard-v0", entry_point=GuessEnv)
    env = agentgym.make("test/GuessGuard-v0")
    obs0, _ = env.reset(seed=0)
    for bad in ["", "x" * 10_000, "a\x00b", "bad \udcff", None, 7]:
        obs, reward, terminated, truncated, info = env.step(bad)
        assert info["action_valid"] is False and reward == 0.0 and obs == obs0
        assert not terminated and not truncated
    target = env.unwrapped.walkthrough()[0]
    *_, terminated, _, info = env.step(target)
    assert terminated and info["won"]
    obs, reward, terminated, truncated, info = env.step(target)
    assert info["action_valid"] is False and reward == 0.0 and terminated
