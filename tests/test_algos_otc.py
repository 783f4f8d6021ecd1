"""OTC tool-efficiency rewards against the worked examples in shared/ALGORITHMS.md."""

import numpy as np
import pytest

from agentgym.algos.otc import (OTCState, count_tool_calls, episode_tool_calls, otc_grpo_rewards,
                                otc_grpo_tool_reward, otc_ppo_rewards, otc_ppo_tool_reward,
                                tool_use_metrics)
from agentgym.episode import Episode, Step


def test_otc_ppo_worked_example():
    np.testing.assert_allclose(otc_ppo_tool_reward(np.arange(5), c=4),
                               [1, 0.8660, 0.7071, 0.5878, 0.5], atol=1e-4)


def test_otc_grpo_worked_example():
    np.testing.assert_allclose(otc_grpo_tool_reward(np.arange(7), n=2, c=4),
                               [0, 0.866, 1, 0.9511, 0.866, 0.7818, 0.7071], atol=1e-4)


def test_otc_grpo_n_zero_branches():
    # f = n = 0 gives 1; n = 0 with calls falls back to the cosine form
    np.testing.assert_allclose(otc_grpo_tool_reward([0, 1, 2], n=0, c=4), [1, 0.8660, 0.7071], atol=1e-4)


def test_reward_multiplies_correctness_never_adds():
    r = otc_ppo_rewards([0, 2, 2], correct=[0, 0, 1], c=4, alpha=1.0)
    np.testing.assert_allclose(r, [0, 0, 0.7071], atol=1e-4)
    assert otc_ppo_rewards([3], [0.5], c=4, alpha=2.0)[0] == pytest.approx(2 * 0.5 * 0.5878, abs=1e-4)


def test_grpo_updates_the_minimum_before_scoring_the_group():
    state = OTCState()
    # first group: correct answers with 3 and 1 calls -> n = 1 already for this group
    r = otc_grpo_rewards(state, ["q"] * 3, [3, 1, 0], [1, 1, 0], c=4)
    expected = otc_grpo_tool_reward([3, 1, 0], n=1, c=4) * [1, 1, 0]
    np.testing.assert_allclose(r, expected)
    assert r[1] == pytest.approx(1.0)
    # the minimum is a running minimum: a later group with only 2-call answers keeps n = 1
    r2 = otc_grpo_rewards(state, ["q", "q"], [2, 2], [1, 1], c=4)
    np.testing.assert_allclose(r2, otc_grpo_tool_reward([2, 2], n=1, c=4))
    assert r2[0] < 1.0
    # incorrect answers never lower it, other questions are separate
    otc_grpo_rewards(state, ["q", "p"], [0, 5], [0, 1], c=4)
    assert state.min_calls == {"q": 1, "p": 5}


def test_state_save_and_restore():
    state = OTCState()
    otc_grpo_rewards(state, ["a", "b"], [2, 4], [1, 1], c=4)
    restored = OTCState()
    restored.load_state_dict(state.state_dict())
    assert restored.min_calls == {"a": 2, "b": 4}
    np.testing.assert_array_equal(restored.lookup(["a", "b", "new"]), [2, 4, 0])


def test_bad_inputs():
    with pytest.raises(ValueError):
        otc_ppo_tool_reward([-1], c=4)
    with pytest.raises(ValueError):
        otc_ppo_rewards([1, 2], [1], c=4)
    with pytest.raises(ValueError):
        otc_grpo_rewards(OTCState(), ["q"], [1, 2], [1, 1], c=4)


def test_metrics():
    m = tool_use_metrics([0, 2, 4, 2], [1, 1, 0, 1])
    assert m == {"tool/calls_per_episode": 2.0, "tool/accuracy": 0.75, "tool/productivity": 3 / 8}
    assert "tool/productivity" not in tool_use_metrics([0, 0], [1, 0])


def _step(action, valid=True):
    return Step(index=0, observation="", prompt_ids=[], response_ids=[], logprobs=[], entropies=[],
                response_text=action or "", action=action, action_valid=valid, reward=0.0, anchor="")


def test_tool_calls_are_counted_from_episode_actions():
    actions = ["<think>maybe <answer>x</answer></think><python>1+1</python>",
               "<search>Foo</search> then <answer>bar</answer>", "hello", None,
               "<answer>3</answer>"]
    assert count_tool_calls(actions) == 2
    ep = Episode("r", 0, "train", "g", "e", "env", "t", 0,
                 steps=[_step(a) for a in actions] + [_step("<search>x</search>", valid=False)])
    assert episode_tool_calls(ep) == 2
    ep.info["tool_calls"] = 5
    assert episode_tool_calls(ep) == 5


def test_otc_episode_rewards_from_episode_records():
    from agentgym.algos.otc import otc_episode_rewards

    def episode(task, actions, reward):
        return Episode("r", 0, "train", "g", f"e{len(actions)}{reward}", "env", task, 0,
                       steps=[_step(a) for a in actions], total_reward=reward)

    eps = [episode("q", ["<search>a</search>", "<search>b</search>", "<answer>x</answer>"], 1.0),
           episode("q", ["<search>a</search>", "<answer>x</answer>"], 1.0),
           episode("q", ["<answer>y</answer>"], 0.0)]
    state = OTCState()
    rewards, metrics = otc_episode_rewards(eps, "grpo", max_tool_calls=4, state=state)
    # n = 1 (the best correct answer this group) is known before scoring
    np.testing.assert_allclose(rewards, [otc_grpo_tool_reward(2, 1, 4), 1.0, 0.0])
    assert state.min_calls == {"q": 1}
    assert metrics["tool/calls_per_episode"] == 1.0 and metrics["tool/productivity"] == 2 / 3
    ppo, _ = otc_episode_rewards(eps, "ppo", max_tool_calls=4)
    np.testing.assert_allclose(ppo, [0.7071, 0.8660, 0.0], atol=1e-4)
    with pytest.raises(ValueError, match="OTCState"):
        otc_episode_rewards(eps, "grpo", max_tool_calls=4)


def test_otc_step_rewards_replace_the_outcome_on_the_last_step():
    from agentgym.algos.otc import otc_step_rewards

    eps = [Episode("r", 0, "train", "g", "a", "env", "q", 0, total_reward=1.0,
                   steps=[_step("<search>a</search>"), _step("<answer>x</answer>")]),
           Episode("r", 0, "train", "g", "b", "env", "q", 0, total_reward=0.0,
                   steps=[_step("<answer>y</answer>")])]
    rewards, _ = otc_step_rewards([0.0, 1.0, 0.0], [2, 1], eps, "ppo", max_tool_calls=4)
    np.testing.assert_allclose(rewards, [0.0, 0.8660, 0.0], atol=1e-4)
    same, metrics = otc_step_rewards([0.0, 1.0, 0.0], [2, 1], eps, "none", max_tool_calls=4)
    np.testing.assert_array_equal(same, [0.0, 1.0, 0.0]) and not metrics
    with pytest.raises(ValueError, match="lengths"):
        otc_step_rewards([0.0, 1.0], [2, 1], eps, "ppo", max_tool_calls=4)
