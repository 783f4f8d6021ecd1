"""Forking environments: replay == snapshot, across threads and worker processes."""

import pytest

import agentgym
from agentgym.rollout.envpool import EnvPool
from tests.toy_envs import DriftingEchoEnv, EchoEnv, SnapshotEchoEnv, UnseededEnv

agentgym.register("test/ForkEcho-v0", entry_point=SnapshotEchoEnv, max_episode_steps=6)

ACTIONS = ["a", "bb", "yy"]    # none of these ends an EchoEnv episode (codes % 3 != 0)
CONTINUE = ["y", "yy", "a", "bb"]


def _make():
    return agentgym.make("test/ForkEcho-v0")


def _play_fork(backend, snapshots, at_step, workers=2):
    """Play ACTIONS in slot 0, fork slot 0 at ``at_step`` into slot 1 (in the other
    worker for processes), then play CONTINUE in the fork; returns what the fork saw."""
    pool = EnvPool(_make, workers=workers, timeout_s=30, backend=backend)
    pool.keep_snapshots = snapshots
    try:
        pool.reset({0: 7})
        for a in ACTIONS:
            assert not pool.step({0: a})[0].error
        out = pool.fork({1: (0, at_step)})[1]
        assert not out.error, out.error
        seen = [out.value]
        for a in CONTINUE:
            step = pool.step({1: a})[1]
            assert not step.error, step.error
            seen.append(step.value)
        used_snapshot = pool.traces[1].snapshots[at_step] is not None
        return seen, used_snapshot, pool.traces[1]
    finally:
        pool.close()


def _comparable(seen):
    out = []
    for value in seen:
        obs, *rest, info = value
        out.append((obs, *rest, info["anchor"], info["admissible_actions"], info["won"]))
    return out


@pytest.mark.parametrize("backend", ["thread", "process"])
@pytest.mark.parametrize("at_step", [0, 2, 3])
def test_snapshot_fork_equals_replay_fork(backend, at_step):
    replayed, used_r, trace_r = _play_fork(backend, False, at_step)
    restored, used_s, trace_s = _play_fork(backend, True, at_step)
    assert not used_r and used_s
    assert _comparable(replayed) == _comparable(restored)
    # and both equal an episode that played the same actions from the start
    direct = _make()
    obs, info = direct.reset(seed=7)
    for a in ACTIONS[:at_step]:
        obs, _, _, _, info = direct.step(a)
    want = [(obs, info)] + [direct.step(a) for a in CONTINUE]
    assert _comparable(replayed) == _comparable(want)
    assert trace_r.actions == trace_s.actions == ACTIONS[:at_step] + CONTINUE


def test_the_step_limit_carries_over_to_the_fork():
    seen, _, _ = _play_fork("thread", True, 3)
    # 3 inherited steps + 3 more reach max_episode_steps=6: truncated at the 3rd
    assert [v[3] for v in seen[1:]] == [False, False, True, True]


def test_fork_mode_is_read_from_the_class():
    assert EnvPool(_make).fork_mode() == "snapshot"   # a lambda: one env is built to look
    assert EnvPool(EchoEnv).fork_mode() == "replay"
    assert EnvPool(SnapshotEchoEnv).fork_mode() == "snapshot"
    from agentgym.rollout.envpool import EnvMaker
    assert EnvPool(EnvMaker.of("test/ForkEcho-v0")).fork_mode() == "snapshot"


@pytest.mark.parametrize("env", [UnseededEnv, DriftingEchoEnv])
def test_a_replay_that_differs_is_a_typed_fork_mismatch(env):
    pool = EnvPool(env, workers=2, timeout_s=30)
    try:
        pool.reset({0: 3})
        pool.step({0: "guess 1"})
        out = pool.fork({1: (0, 1)}, env_id="test/Unforkable-v0")[1]
    finally:
        pool.close()
    assert out.fork_mismatch and out.error.startswith("ForkMismatch: test/Unforkable-v0 step")
    assert 1 not in pool.traces


def test_forking_a_failed_slot_is_an_error_not_a_crash():
    pool = EnvPool(EchoEnv, workers=1, timeout_s=30)
    try:
        out = pool.fork({1: (0, 0)})[1]
    finally:
        pool.close()
    assert out.error.startswith("EnvError") and not out.fork_mismatch


def test_check_fork_reports_the_mode_and_verifies_determinism():
    from agentgym.rollout.fork import check_fork

    ok = check_fork(_make, seed=3)
    assert ok.ok and ok.detail.startswith("forks by snapshot; replay and snapshot forks agree")
    replay = check_fork(lambda: agentgym.make("test/ForkGuess-v0"), seed=3)
    assert replay.ok and replay.detail.startswith("forks by replay")
    bad = check_fork(DriftingEchoEnv, seed=3)
    assert not bad.ok and "step" in bad.detail


agentgym.register("test/ForkGuess-v0", entry_point=EchoEnv, max_episode_steps=6)


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_webshop_snapshot_fork_equals_replay_fork_along_a_purchase(backend):
    from agentgym.rollout.envpool import EnvMaker

    make = EnvMaker.of("agentgym/WebShop-v0", {"num_products": 60})
    probe = make()
    probe.reset(seed=4)
    plan = probe.unwrapped.walkthrough()
    probe.close()
    assert len(plan) >= 3
    seen = {}
    for snapshots in (False, True):
        pool = EnvPool(make, workers=2, timeout_s=60, backend=backend)
        pool.keep_snapshots = snapshots
        try:
            pool.reset({0: 4})
            for a in plan[:2]:
                pool.step({0: a})
            out = pool.fork({1: (0, 2)})[1]
            steps = [pool.step({1: a})[1] for a in plan[2:]]
            assert not out.error and not any(s.error for s in steps)
            seen[snapshots] = _comparable([out.value] + [s.value for s in steps])
            assert (pool.traces[1].snapshots[2] is not None) == snapshots
        finally:
            pool.close()
    assert seen[False] == seen[True]
    assert seen[True][-1][1] > 0   # the purchase is scored in the fork
