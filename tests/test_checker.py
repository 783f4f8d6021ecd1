import agentgym
from agentgym.checker import check_env
from tests.toy_envs import CrashOnControlCharsEnv, GuessEnv, NoAnchorEnv, UnseededEnv


def _failed(report):
    return {r.name for r in report.failures}


def test_contract_keeping_env_passes_with_both_agents():
    agentgym.register("test/GuessCheck-v0", entry_point=GuessEnv, max_episode_steps=8)
    report = check_env(agentgym.make("test/GuessCheck-v0"), episodes=4)
    assert report.ok, report.failures
    assert report.episodes == 4
    report = check_env(agentgym.make("test/GuessCheck-v0"), episodes=3, agent="scripted")
    assert report.ok and report.wins == 3 and report.mean_length == 1


def test_unseeded_env_fails_determinism():
    agentgym.register("test/Unseeded-v0", entry_point=UnseededEnv, max_episode_steps=8)
    report = check_env(agentgym.make("test/Unseeded-v0"))
    assert "reset is deterministic per seed" in _failed(report)
    detail = next(r.detail for r in report.failures if r.name == "reset is deterministic per seed")
    assert "different initial states" in detail


def test_missing_info_key_is_named():
    agentgym.register("test/NoAnchor-v0", entry_point=NoAnchorEnv, max_episode_steps=8)
    report = check_env(agentgym.make("test/NoAnchor-v0"))
    assert not report.ok
    assert all("no 'anchor'" in r.detail for r in report.failures if "close" not in r.name)


def test_raw_env_that_raises_on_bad_input_fails_bad_action_check():
    # checked as a raw instance (not through agentgym.make, so no guard)
    report = check_env(CrashOnControlCharsEnv(), env_id="raw")
    assert "malformed actions are invalid, never raise" in _failed(report)
    detail = next(r.detail for r in report.failures if "malformed" in r.name)
    assert "raised ValueError" in detail
    # the guard that agentgym.make adds fixes exactly that
    agentgym.register("test/Crashy-v0", entry_point=CrashOnControlCharsEnv, max_episode_steps=8)
    assert check_env(agentgym.make("test/Crashy-v0")).ok
