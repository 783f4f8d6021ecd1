"""Training on tree batches: tree advantages through credit assignment, GiGPO on a tree by
hand, ARPO's hard attribution, and shared steps merged with the loss of duplicating them."""

import copy

import pytest
import torch

from agentgym.config import config_from_dict
from agentgym.credit import assign_advantages
from agentgym.episode import Episode, Step
from agentgym.policy import make_policy
from agentgym.samples import build_samples
from agentgym.update import PolicyUpdater


def _step(i, anchor, reward, prompt, response):
    return Step(index=i, observation=anchor, prompt_ids=prompt, response_ids=response,
                logprobs=[-1.0] * len(response), entropies=[1.0] * len(response),
                response_text="", action="a", action_valid=True, reward=reward, anchor=anchor)


def _tree_batch():
    """Task g: tree A = chain a (x -> y, rewards 0, 1) and fork b of a at step 1 (own
    y-step, reward 0); tree C = chain c (x, reward 0)."""
    a = Episode("r", 1, "train", "g", "a", "env", "t", 0,
                steps=[_step(0, "x", 0.0, [5, 6, 7], [8, 9]), _step(1, "y", 1.0, [5, 6, 10], [11])])
    shared = copy.deepcopy(a.steps[0])
    shared.info["shared_from"] = "a"
    b = Episode("r", 1, "train", "g", "b", "env", "t", 0, tree_id="a", parent_id="a", branch_step=1,
                steps=[shared, _step(1, "y", 0.0, [5, 6, 10], [12, 13])])
    c = Episode("r", 1, "train", "g", "c", "env", "t", 0,
                steps=[_step(0, "x", 0.0, [5, 6, 7], [14])])
    return [a, b, c]


def _algo(**advantage):
    return config_from_dict({"algorithm": {"reward": {"invalid_action_penalty": 0.0},
                                           "advantage": advantage}}).algorithm


def test_gigpo_on_a_tree_batch_by_hand():
    eps = _tree_batch()
    assign_advantages(eps, _algo(step="gigpo", gigpo={"gamma": 0.95}))
    # A^E: returns 1, 0, 0 -> GRPO (1.1547, -0.5774, -0.5774)
    # step returns: a: 0.95, 1; b: 0, 0; c: 0. Anchor groups: x {0.95, 0, 0}, y {1, 0}
    got = [s.advantage for ep in eps for s in ep.steps]
    want = [1.1547 + (0.95 - 0.95 / 3), 1.1547 + 0.5,
            -0.57735 - 0.95 / 3, -0.57735 - 0.5, -0.57735 - 0.95 / 3]
    assert got == pytest.approx(want, abs=1e-4)


def test_hard_attribution_gives_a_shared_step_the_mean_of_its_leaves():
    eps = _tree_batch()
    assign_advantages(eps, _algo(attribution="hard"))
    a0, b0 = eps[0].steps[0].advantage, eps[1].steps[0].advantage
    assert a0 == b0 == pytest.approx((1.1547 - 0.57735) / 2, abs=1e-4)
    assert eps[0].steps[1].advantage == pytest.approx(1.1547, abs=1e-4)   # not shared
    assert eps[0].steps[0].advantage_parts["soft"] == pytest.approx(1.1547, abs=1e-4)


def test_tree_grpo_estimator_through_credit_assignment():
    eps = _tree_batch()
    assign_advantages(eps, _algo(episode="tree_grpo"))
    # task: (1.1547, -0.5774, -0.5774); within tree a: (0.7071, -0.7071); tree c alone: 0
    assert [ep.steps[-1].advantage for ep in eps] == \
        pytest.approx([1.1547 + 0.7071, -0.57735 - 0.7071, -0.57735], abs=1e-4)


def test_treepo_estimator_through_credit_assignment():
    eps = _tree_batch()
    assign_advantages(eps, _algo(episode="treepo"))
    # depth 0: r - 1/3; depth 1: a and b share node (a, 0): r - 1/2; c's node is alone
    raw = [((1 - 1 / 3) + 0.5) / 2, ((0 - 1 / 3) - 0.5) / 2, -1 / 3]
    mean = sum(raw) / 3
    std = (sum((r - mean) ** 2 for r in raw) / 2) ** 0.5
    assert [ep.steps[0].advantage for ep in eps] == \
        pytest.approx([(r - mean) / (std + 1e-6) for r in raw], abs=1e-4)


def test_merged_shared_steps_have_the_loss_of_duplicated_ones():
    eps = _tree_batch()
    assign_advantages(eps, _algo(attribution="hard"))   # advantages agree on shared steps
    duplicated = build_samples(eps, "per_step", "duplicate")
    merged = build_samples(eps, "per_step", "merge")
    assert len(duplicated) == 5 and len(merged) == 4
    assert sorted(s.weight for s in merged) == [1.0, 1.0, 1.0, 2.0]

    policy = make_policy("tiny-smollm2", seed=0)
    cfg = config_from_dict({}).algorithm.loss

    def grads(samples):
        model = copy.deepcopy(policy.model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        updater = PolicyUpdater(model, optimizer, None, cfg, temperature=1.0,
                                pad_id=policy.tokenizer.pad_token_id, micro_batch=2,
                                max_grad_norm=1e9)
        metrics = updater.step(samples, iteration=1)
        return [p.grad.clone() for p in model.parameters() if p.grad is not None], metrics

    g_dup, m_dup = grads(duplicated)
    g_merge, m_merge = grads(merged)
    assert m_dup["loss/policy"] == pytest.approx(m_merge["loss/policy"], rel=1e-5)
    assert m_dup["perf/trained_tokens"] == m_merge["perf/trained_tokens"]
    for a, b in zip(g_dup, g_merge):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_merge_needs_per_step_samples():
    from agentgym.errors import ConfigError
    with pytest.raises(ConfigError, match="shared_steps=merge needs trainer.samples=per_step"):
        config_from_dict({"rollout": {"tree": {"shared_steps": "merge"}, "context": "conversation"},
                          "trainer": {"samples": "trajectory"}})
