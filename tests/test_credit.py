"""Credit assignment over hand-built episodes: shaping, groups, who gets trained."""

import pytest

from agentgym.config import AlgorithmConfig, config_from_dict
from agentgym.credit import assign_advantages, trainable
from agentgym.episode import Episode, Step


def _episode(group, name, rewards, valid=None, termination="failure"):
    valid = valid or [True] * len(rewards)
    steps = [Step(index=i, observation="", prompt_ids=[1], response_ids=[2], logprobs=[0.0],
                  entropies=[0.0], response_text="", action="a", action_valid=v, reward=r, anchor="")
             for i, (r, v) in enumerate(zip(rewards, valid))]
    return Episode(run_id="r", iteration=1, split="train", group_id=group, episode_id=name,
                   env_id="x", task_id=group, seed=0, steps=steps, termination=termination)


def test_grpo_per_group_broadcast_to_steps():
    eps = [_episode("g1", "a", [0, 1]), _episode("g1", "b", [0, 0, 0]),
           _episode("g2", "c", [1]), _episode("g2", "d", [1])]
    metrics = assign_advantages(eps, AlgorithmConfig())
    assert [s.advantage for s in eps[0].steps] == pytest.approx([0.7071, 0.7071], abs=1e-4)
    assert [s.advantage for s in eps[1].steps] == pytest.approx([-0.7071] * 3, abs=1e-4)
    assert [s.advantage for s in eps[2].steps + eps[3].steps] == [0.0, 0.0]
    assert eps[0].steps[0].advantage_parts == {"episode": pytest.approx(0.7071, abs=1e-4)}
    assert metrics["credit/zero_variance_groups"] == 0.5


def test_invalid_action_penalty_enters_the_return():
    cfg = config_from_dict({"algorithm": {"advantage": {"normalize": "none"}}}).algorithm
    eps = [_episode("g", "a", [0, 0], valid=[False, True]), _episode("g", "b", [0, 0])]
    assign_advantages(eps, cfg)
    assert eps[0].info["return"] == pytest.approx(-0.1)
    assert eps[0].steps[0].advantage == pytest.approx(-0.05)
    assert eps[1].steps[0].advantage == pytest.approx(0.05)


def test_rloo_and_env_failures_left_out():
    cfg = config_from_dict({"algorithm": {"advantage": {"episode": "rloo"}}}).algorithm
    broken = _episode("g", "x", [0], termination="env_error")
    eps = [_episode("g", "a", [1]), _episode("g", "b", [0]), _episode("g", "c", [0]), broken]
    assign_advantages(eps, cfg)
    assert [e.steps[0].advantage for e in eps[:3]] == pytest.approx([1.0, -0.5, -0.5])
    assert broken.steps[0].advantage is None
    assert broken not in trainable(eps)
