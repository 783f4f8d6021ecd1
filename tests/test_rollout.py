"""The rollout engine with the real (tiny) HF model and small environments."""

import pytest

import agentgym
from agentgym.rollout.envpool import EnvPool
from agentgym.episode import ENV_ERROR, TIMEOUT
from agentgym.policy import make_policy
from agentgym.policy.base import SamplingParams
from agentgym.prompting import PromptTemplate
from agentgym.rollout import RolloutEngine, RolloutSettings
from agentgym.samples import build_samples, collate
from tests.toy_envs import CrashingEnv, GuessEnv, HangingEnv

agentgym.register("test/RolloutGuess-v0", entry_point=GuessEnv, max_episode_steps=3)


@pytest.fixture(scope="module")
def policy():
    return make_policy("tiny-smollm2", seed=0)


def _engine(policy, env_id, group_size=2, timeout_s=30.0, **settings):
    # a class instead of an id: the raw env, without the guard, sees every action
    make = (lambda: agentgym.make(env_id)) if isinstance(env_id, str) else env_id
    pool = EnvPool(make, workers=2, timeout_s=timeout_s)
    sampling = SamplingParams(max_new_tokens=6, temperature=1.0, stop_strings=["</action>"])
    return RolloutEngine(policy, pool, PromptTemplate(),
                         RolloutSettings(group_size=group_size, sampling=sampling, think=False, **settings),
                         env_id=env_id)


def test_groups_share_their_task_and_ledger_is_exact(policy):
    engine = _engine(policy, "test/RolloutGuess-v0", group_size=3)
    episodes = engine.run([11, 12], iteration=1)
    engine.pool.close()
    assert len(episodes) == 6
    by_group = {}
    for ep in episodes:
        by_group.setdefault(ep.group_id, set()).add(ep.task_id)
        assert 1 <= ep.length <= 3
    assert len(by_group) == 2 and all(len(tasks) == 1 for tasks in by_group.values())
    for ep in episodes:
        for step in ep.steps:
            # the prompt is what the chat template gives, plus the pre-filled "<action>"
            assert step.prompt_ids[-len(policy.tokenizer.encode("<action>", add_special_tokens=False)):] == \
                policy.tokenizer.encode("<action>", add_special_tokens=False)
            assert len(step.logprobs) == len(step.entropies) == len(step.response_ids) > 0
    # what training sees is exactly what was sampled
    samples = build_samples(episodes)
    steps = [s for ep in episodes for s in ep.steps]
    assert [s.input_ids for s in samples] == [st.prompt_ids + st.response_ids for st in steps]
    batch = collate(samples, policy.tokenizer.pad_token_id)
    for row, st in enumerate(steps):
        n = len(st.prompt_ids) + len(st.response_ids)
        assert batch["input_ids"][row, :n].tolist() == st.prompt_ids + st.response_ids
        assert batch["loss_mask"][row].sum() == len(st.response_ids)


def test_an_env_that_raises_ends_only_its_episode(policy):
    engine = _engine(policy, CrashingEnv, group_size=2)
    episodes = engine.run([1], iteration=0)
    engine.pool.close()
    for ep in episodes:
        # either won at the first step, or the second step crashed
        if not ep.won:
            assert ep.termination == ENV_ERROR
            assert "RuntimeError: the game engine fell over" in ep.error
            assert ep.steps[-1].error == ep.error


def test_a_stuck_env_times_out_and_the_run_goes_on(policy):
    HangingEnv.release.clear()
    engine = _engine(policy, HangingEnv, group_size=2, timeout_s=0.3)
    try:
        episodes = engine.run([1], iteration=0)
    finally:
        HangingEnv.release.set()
        engine.pool.close()
    assert [ep.termination for ep in episodes] == [TIMEOUT, TIMEOUT]
    assert all("Timeout" in ep.error for ep in episodes)


def test_a_prompt_over_the_context_limit_truncates_with_reason_context(policy):
    engine = _engine(policy, "test/RolloutGuess-v0", group_size=1, max_context=50)
    (episode,) = engine.run([3], iteration=0)
    engine.pool.close()
    assert episode.termination == "context" and episode.length == 0


def test_conversation_context_makes_one_sequence_per_episode(policy):
    engine = _engine(policy, "test/RolloutGuess-v0", group_size=4, context="conversation")
    episodes = engine.run([5], iteration=0)
    engine.pool.close()
    eos = policy.tokenizer.eos_token_id
    multi = [ep for ep in episodes if ep.length > 1]
    assert multi, "expected at least one episode longer than one step"
    for ep in multi:
        for prev, step in zip(ep.steps, ep.steps[1:]):
            sent = prev.prompt_ids + prev.response_ids
            assert step.prompt_ids[:len(sent)] == sent
            # a reply cut by the stop string is closed with eos (not trained on)
            if sent[-1] != eos:
                assert step.prompt_ids[len(sent)] == eos
    samples = build_samples(multi, "trajectory")
    for sample, ep in zip(samples, multi):
        assert sample.input_ids[:len(ep.steps[-1].prompt_ids)] == ep.steps[-1].prompt_ids
        assert sum(sample.loss_mask) == sum(len(s.response_ids) for s in ep.steps)
