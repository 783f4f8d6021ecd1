"""ARPO experience replay: the worked example from ALGORITHMS.md, buffer rules, state."""

import json

import numpy as np
import pytest

from agentgym.algos.arpo import ARPOReplay
from agentgym.algos.grpo import grpo_advantages
from agentgym.episode import ENV_ERROR, SUCCESS, Episode, Step


def _episode(group, member, reward, task="t0", termination=None, task_type="fam"):
    step = Step(index=0, observation="obs", prompt_ids=[1, 2, member], response_ids=[7, reward > 0],
                logprobs=[-0.5, -0.25], entropies=[1.0, 1.0], response_text="r", action="a",
                action_valid=True, reward=float(reward), anchor="s")
    return Episode(run_id="run", iteration=0, split="train", group_id=group,
                   episode_id=f"{group}-{member}", env_id="env", task_id=task, seed=0,
                   steps=[step], won=reward > 0, total_reward=float(reward),
                   termination=termination or (SUCCESS if reward > 0 else "failure"),
                   task_type=task_type)


def test_worked_example_all_failed_group_gets_one_buffered_success():
    replay = ARPOReplay(capacity=8, success_threshold=0.1)
    earlier = [_episode("g-old", 0, 1.0)]  # a success on the same task, an earlier batch
    replay.apply(earlier)
    batch = [_episode("g1", m, 0.0) for m in range(8)]
    out, metrics = replay.apply(batch)
    rewards = [ep.total_reward for ep in out]
    assert rewards == [1.0] + [0.0] * 7
    adv = grpo_advantages(rewards, [ep.group_id for ep in out])
    np.testing.assert_allclose(adv, [2.4749] + [-0.3536] * 7, atol=1e-4)
    assert metrics["arpo/replaced_groups"] == 1 and metrics["arpo/all_failed_groups"] == 1
    # the replayed copy carries the stored tokens, in the slot's group, with a new id
    assert out[0].steps[0].response_ids == earlier[0].steps[0].response_ids
    assert out[0].group_id == "g1" and out[0].episode_id == "g1-0-replay"
    assert out[0].info["arpo_replay_of"] == "g-old-0"
    assert batch[0].total_reward == 0.0  # the input list is not modified


def test_mixed_group_and_empty_buffer_are_left_alone():
    replay = ARPOReplay()
    mixed = [_episode("g", 0, 1.0), _episode("g", 1, 0.0)]
    out, metrics = replay.apply(mixed)
    assert out == mixed and metrics["arpo/all_failed_groups"] == 0
    other_task = [_episode("h", m, 0.0, task="t9") for m in range(4)]
    out, metrics = replay.apply(other_task)
    assert out == other_task
    assert metrics["arpo/all_failed_groups"] == 1 and metrics["arpo/replaced_groups"] == 0


def test_buffer_is_updated_from_the_original_batch_after_the_decision():
    replay = ARPOReplay()
    # group g: all failed, group h: one success on the same task. The success must not
    # be replayed into g in the same batch (the buffer is updated afterwards).
    batch = [_episode("g", 0, 0.0), _episode("g", 1, 0.0), _episode("h", 0, 1.0),
             _episode("h", 1, 0.0)]
    out, metrics = replay.apply(batch)
    assert metrics["arpo/replaced_groups"] == 0
    assert len(replay.buffers["t0"]) == 1
    out, metrics = replay.apply([_episode("k", 0, 0.0), _episode("k", 1, 0.0)])
    assert metrics["arpo/replaced_groups"] == 1
    # replayed copies are not added back (they are not in the original batch)
    assert len(replay.buffers["t0"]) == 1


def test_fifo_capacity_threshold_and_key():
    replay = ARPOReplay(capacity=2, success_threshold=0.5, key="task_type")
    replay.apply([_episode("a", i, 1.0, task=f"x{i}") for i in range(3)]
                 + [_episode("b", 0, 0.4, task="y")])
    assert list(replay.buffers) == ["fam"]
    assert [ep.episode_id for ep in replay.buffers["fam"]] == ["a-1", "a-2"]


def test_env_error_member_is_replaced_first_and_not_counted():
    replay = ARPOReplay()
    replay.apply([_episode("old", 0, 1.0)])
    batch = [_episode("g", 0, 0.0), _episode("g", 1, 0.0, termination=ENV_ERROR)]
    out, _ = replay.apply(batch)
    assert [ep.total_reward for ep in out] == [0.0, 1.0]


def test_threshold_on_group_std_and_mean():
    replay = ARPOReplay(fail_std=0.05, fail_mean=0.2)
    assert replay.all_failed(np.array([0.1, 0.1, 0.1]))
    assert not replay.all_failed(np.array([0.3, 0.3]))       # mean too high
    assert not replay.all_failed(np.array([0.0, 0.2]))       # spread too wide


def test_state_round_trips_through_json():
    replay = ARPOReplay(seed=3)
    replay.apply([_episode("old", m, 1.0) for m in range(3)])
    state = json.loads(json.dumps(replay.state_dict()))
    restored = ARPOReplay(seed=99)
    restored.load_state_dict(state)
    batch = [_episode("g", m, 0.0) for m in range(4)]
    a, _ = replay.apply(batch)
    b, _ = restored.apply(batch)
    assert a[0].info["arpo_replay_of"] == b[0].info["arpo_replay_of"]
    assert a[0].steps == b[0].steps


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="capacity"):
        ARPOReplay(capacity=0)
    with pytest.raises(ValueError, match="key"):
        ARPOReplay(key="seed")


def test_replayed_tokens_reach_the_training_samples_with_the_group_advantage():
    from agentgym.config import AlgorithmConfig
    from agentgym.credit import assign_advantages
    from agentgym.samples import build_samples

    replay = ARPOReplay()
    source = _episode("old", 0, 1.0)
    source.steps[0].response_ids = [41, 42, 43]
    source.steps[0].logprobs = [-1.0, -2.0, -3.0]
    source.steps[0].entropies = [0.5] * 3
    replay.apply([source])
    batch, _ = replay.apply([_episode("g1", m, 0.0) for m in range(8)])
    assign_advantages(batch, AlgorithmConfig())
    samples = build_samples(batch, "per_step")
    replayed = [s for s in samples if s.episode_id == "g1-0-replay"]
    assert len(replayed) == 1
    sample = replayed[0]
    n = sum(sample.loss_mask)
    assert sample.input_ids[-n:] == [41, 42, 43]
    assert sample.behaviour_logprobs[-n:] == [-1.0, -2.0, -3.0]
    assert sample.advantages[-1] == pytest.approx(2.4749, abs=1e-4)
