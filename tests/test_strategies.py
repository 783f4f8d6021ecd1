"""Rollout strategies on the real engine (tiny model): tree shapes, budgets, shared prefixes."""

import pytest

import agentgym
from agentgym.episode import ENV_ERROR
from agentgym.policy import make_policy
from agentgym.policy.base import SamplingParams
from agentgym.prompting import PromptTemplate
from agentgym.rollout import RolloutEngine, RolloutSettings
from agentgym.rollout.engine import ForkError
from agentgym.rollout.envpool import EnvPool
from agentgym.rollout.strategies import ARPOBranching, Strategy, TreeGRPO, TreePO
from tests.toy_envs import DriftingEchoEnv, EchoEnv, SnapshotEchoEnv

agentgym.register("test/StratEcho-v0", entry_point=EchoEnv, max_episode_steps=5)
agentgym.register("test/StratSnapEcho-v0", entry_point=SnapshotEchoEnv, max_episode_steps=5)
agentgym.register("test/StratDrift-v0", entry_point=DriftingEchoEnv, max_episode_steps=5)


@pytest.fixture(scope="module")
def policy():
    return make_policy("tiny-smollm2", seed=0)


def _run(policy, strategy, env_id="test/StratEcho-v0", seeds=(3, 4), context="window",
         iteration=1):
    pool = EnvPool(lambda: agentgym.make(env_id), workers=2, timeout_s=30)
    sampling = SamplingParams(max_new_tokens=5, temperature=1.0)
    engine = RolloutEngine(policy, pool, PromptTemplate(raw_action=True),
                           RolloutSettings(sampling=sampling, think=False, context=context),
                           env_id=env_id, strategy=strategy)
    try:
        return engine.run(list(seeds), iteration=iteration), engine
    finally:
        pool.close()


def _check_tree(episodes):
    """Every fork repeats its parent's first steps exactly and then samples from the same
    state: its first own prompt is the one its parent saw at that step."""
    by_id = {ep.episode_id: ep for ep in episodes}
    for ep in episodes:
        if ep.parent_id is None:
            assert ep.tree_id is None and ep.branch_step == 0
            continue
        parent = by_id[ep.parent_id]
        assert ep.tree_id == parent.root_id and ep.group_id == parent.group_id
        k = ep.branch_step
        for mine, theirs in zip(ep.steps[:k], parent.steps[:k]):
            assert (mine.prompt_ids, mine.response_ids, mine.reward) == \
                (theirs.prompt_ids, theirs.response_ids, theirs.reward)
            assert mine.info["shared_from"] in by_id
        if ep.termination != ENV_ERROR and len(parent.steps) > k and len(ep.steps) > k:
            assert ep.steps[k].prompt_ids == parent.steps[k].prompt_ids
            assert ep.steps[k].index == k


def test_tree_grpo_grows_m_trees_with_l_rounds_of_n_expansions(policy):
    episodes, engine = _run(policy, TreeGRPO(trees=2, rounds=2, expansions=2, seed=1))
    for group in {ep.group_id for ep in episodes}:
        leaves = [ep for ep in episodes if ep.group_id == group]
        assert len(leaves) == 2 * (1 + 2 * 2)
        assert len({ep.root_id for ep in leaves}) == 2
    _check_tree(episodes)
    forks = [ep for ep in episodes if ep.parent_id]
    assert engine.budget.forks == len(forks) == 2 * 2 * 2 * 2   # tasks, trees, rounds, N
    assert engine.budget.env_steps_replayed == sum(ep.branch_step for ep in forks)
    # generated tokens are counted once, where they were sampled
    assert engine.budget.generated_tokens == sum(
        len(s.response_ids) for ep in episodes for s in ep.own_steps)


def test_snapshot_forks_give_the_same_trees_as_replay_forks(policy):
    policy.generator.manual_seed(5)
    replayed, e1 = _run(policy, TreeGRPO(2, 1, 3, seed=2), "test/StratEcho-v0")
    policy.generator.manual_seed(5)
    restored, e2 = _run(policy, TreeGRPO(2, 1, 3, seed=2), "test/StratSnapEcho-v0")
    assert e1.budget.fork_snapshots == 0 and e2.budget.fork_snapshots == e2.budget.forks > 0
    assert e2.budget.env_steps_replayed == 0
    strip = lambda eps: [(ep.parent_id, ep.branch_step, ep.total_reward, ep.termination,
                          [(s.prompt_ids, s.response_ids, s.anchor) for s in ep.steps])
                         for ep in eps]
    assert strip(replayed) == strip(restored)


def test_arpo_branches_after_observations_within_the_budget(policy):
    # beta=1: every reply after an observation branches while the budget allows
    episodes, _ = _run(policy, ARPOBranching(budget=6, initial=2, beta=1.0, weight=0.0, seed=0))
    for group in {ep.group_id for ep in episodes}:
        assert len([ep for ep in episodes if ep.group_id == group]) == 6
    _check_tree(episodes)
    for ep in episodes:
        if ep.parent_id is not None:
            assert ep.branch_step >= 1   # after an environment observation


def test_arpo_with_beta_zero_only_refills_with_chains(policy):
    strategy = ARPOBranching(budget=4, initial=2, beta=0.0, weight=0.0, seed=0)
    episodes, _ = _run(policy, strategy)
    assert all(ep.parent_id is None for ep in episodes)
    assert len(episodes) == 8   # 2 initial + 2 refill chains per task
    assert strategy.metrics()["rollout/arpo_branch_rate"] == 0.0


def test_arpo_resets_its_entropy_baseline_every_batch(policy):
    strategy = ARPOBranching(budget=4, initial=2, seed=0)
    _run(policy, strategy, seeds=(3,))
    first = dict(strategy.initial_entropy)
    _run(policy, strategy, seeds=(4,), iteration=2)
    assert first and strategy.initial_entropy and set(strategy.initial_entropy).isdisjoint(first)


def test_treepo_fills_its_leaf_budget(policy):
    episodes, _ = _run(policy, TreePO(width=1, branch=2, leaves=5, seed=0), context="conversation")
    for group in {ep.group_id for ep in episodes}:
        assert len([ep for ep in episodes if ep.group_id == group]) == 5
    _check_tree(episodes)
    for ep in episodes:   # conversation prompts still extend each other across the fork
        for prev, step in zip(ep.steps, ep.steps[1:]):
            assert step.prompt_ids[:len(prev.prompt_ids)] == prev.prompt_ids


def test_chain_strategy_never_forks(policy):
    episodes, engine = _run(policy, Strategy(3))
    assert len(episodes) == 6 and engine.budget.forks == 0
    assert all(ep.tree_id is None and ep.parent_id is None for ep in episodes)


def test_a_strategy_on_an_env_that_cannot_fork_fails_at_the_first_fork(policy):
    policy.generator.manual_seed(0)
    with pytest.raises(ForkError, match="test/StratDrift-v0 cannot be forked deterministically"):
        _run(policy, ARPOBranching(budget=8, initial=4, beta=1.0, weight=0.0), "test/StratDrift-v0")
