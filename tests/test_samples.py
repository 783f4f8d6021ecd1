"""Loss masks and token ledgers built by hand, including the pad == eos case."""

import torch

from agentgym.episode import Episode, Step
from agentgym.samples import build_samples, collate

EOS = PAD = 2  # pad == eos, as in SmolLM2


def _step(i, prompt, response, adv):
    return Step(index=i, observation="", prompt_ids=prompt, response_ids=response,
                logprobs=[-0.5] * len(response), entropies=[1.0] * len(response),
                response_text="", action="a", action_valid=True, reward=0.0, anchor="",
                advantage=adv)


def _episode(steps):
    return Episode(run_id="r", iteration=1, split="train", group_id="g", episode_id="e",
                   env_id="x", task_id="t", seed=0, steps=steps)


def test_per_step_mask_is_exactly_the_sampled_tokens_with_pad_equal_eos():
    ep = _episode([_step(0, [5, 6, EOS, 7], [8, 9, EOS], 1.5),   # eos inside the prompt too
                   _step(1, [5, 6], [EOS], -0.5)])               # a reply that is only eos
    samples = build_samples([ep], "per_step")
    assert [s.input_ids for s in samples] == [[5, 6, EOS, 7, 8, 9, EOS], [5, 6, EOS]]
    assert samples[0].loss_mask == [0, 0, 0, 0, 1, 1, 1]
    assert samples[1].loss_mask == [0, 0, 1]
    batch = collate(samples, PAD)
    # the second row is padded with the eos id; padding must not be trained on
    assert batch["input_ids"][1].tolist() == [5, 6, EOS, PAD, PAD, PAD, PAD]
    assert batch["loss_mask"][1].tolist() == [0, 0, 1, 0, 0, 0, 0]
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert batch["advantages"][0].tolist() == [0, 0, 0, 0, 1.5, 1.5, 1.5]
    assert torch.equal(batch["behaviour_logprobs"][0, 4:], torch.full((3,), -0.5))


def test_trajectory_sample_masks_observations_between_turns():
    first = _step(0, [1, 2, 3], [10, EOS], 2.0)
    second = _step(1, [1, 2, 3, 10, EOS, 4, 5], [11, EOS], 2.0)  # extends prompt+response
    (sample,) = build_samples([_episode([first, second])], "trajectory")
    assert sample.input_ids == [1, 2, 3, 10, EOS, 4, 5, 11, EOS]
    assert sample.loss_mask == [0, 0, 0, 1, 1, 0, 0, 1, 1]


def test_steps_without_response_are_skipped():
    ep = _episode([_step(0, [1, 2], [], 1.0)])
    assert build_samples([ep]) == []
