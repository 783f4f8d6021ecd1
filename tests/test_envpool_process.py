"""The process backend of EnvPool: same results as threads, crashes and hangs contained."""

from __future__ import annotations

import importlib.util
import os

import pytest

import agentgym
from agentgym.rollout.envpool import EnvMaker, EnvPool, ProcessEnvPool, resolve_backend
from tests.toy_envs import CrashingEnv, GuessEnv, HangingEnv


class PidEnv(GuessEnv):
    """Reports the process it runs in."""

    metadata = {"agentgym.pool": "process"}

    def _info(self, valid=True):
        return dict(super()._info(valid), pid=os.getpid())


agentgym.register("test/PoolGuess-v0", entry_point=GuessEnv, max_episode_steps=5)
agentgym.register("test/PoolPid-v0", entry_point=PidEnv, max_episode_steps=5)


def _play(pool, seeds, actions):
    resets = pool.reset(seeds)
    steps = pool.step({slot: actions[slot] for slot in seeds})
    return ({s: o.value for s, o in resets.items()}, {s: o.value for s, o in steps.items()})


def test_processes_give_what_threads_give():
    seeds = {slot: 100 + slot for slot in range(6)}
    actions = {slot: str(slot % 5) for slot in range(6)}
    threads = EnvPool(EnvMaker.of("test/PoolGuess-v0"), workers=2)
    processes = EnvPool(EnvMaker.of("test/PoolGuess-v0"), workers=3, backend="process")
    try:
        assert isinstance(processes, ProcessEnvPool) and not isinstance(threads, ProcessEnvPool)
        assert _play(threads, seeds, actions) == _play(processes, seeds, actions)
    finally:
        threads.close()
        processes.close()


def test_auto_backend_follows_the_registered_class():
    assert resolve_backend(EnvMaker.of("test/PoolPid-v0"), "auto") == "process"
    assert resolve_backend(EnvMaker.of("test/PoolGuess-v0"), "auto") == "thread"
    assert resolve_backend(lambda: GuessEnv(), "auto") == "thread"
    with pytest.raises(ValueError, match="backend must be one of"):
        EnvPool(lambda: GuessEnv(), backend="ray")
    pool = EnvPool(EnvMaker.of("test/PoolPid-v0"), workers=2, backend="auto")
    try:
        out = pool.reset({0: 1, 1: 2, 2: 3})
        pids = {o.value[1]["pid"] for o in out.values()}
        assert len(pids) == 2 and os.getpid() not in pids
    finally:
        pool.close()


def test_a_crash_ends_only_its_slot_and_lambdas_work_with_fork():
    pool = EnvPool(lambda: CrashingEnv(), workers=2, backend="process")
    try:
        pool.reset({0: 1, 1: 2})
        pool.step({0: "1", 1: "1"})
        out = pool.step({0: "2", 1: "2"})
        assert all(o.error and "the game engine fell over" in o.error for o in out.values())
        again = pool.reset({0: 1})
        assert again[0].error is None
    finally:
        pool.close()


def test_a_hanging_env_times_out_and_its_worker_is_replaced():
    pool = EnvPool(HangingEnv, workers=2, timeout_s=2.0, backend="process")
    try:
        pool.reset({0: 1, 1: 2, 2: 3})
        out = pool.step({0: "1"})
        assert out[0].timed_out
        # slot 2 shared the killed worker: its episode was rebuilt in the new one, where
        # this (hanging) env hangs again
        lost = pool.step({2: "1"})
        assert lost[2].timed_out
        fresh = pool.reset({0: 5, 2: 6})
        assert all(o.error is None for o in fresh.values())
    finally:
        pool.close()


@pytest.mark.slow
def test_alfworld_runs_in_worker_processes(tmp_path):
    if importlib.util.find_spec("alfworld") is None:
        pytest.skip("needs the alfworld package")
    from agentgym.envs.alfworld import suite

    cache = str(tmp_path)
    suite.ensure_suite("train", 2, cache)  # generated once, shared by the workers
    maker = EnvMaker.of("agentgym/ALFWorld-v0", {"num_games": 2, "cache_dir": cache})
    pool = EnvPool(maker, workers=2, backend="auto")
    try:
        assert isinstance(pool, ProcessEnvPool)
        resets = pool.reset({slot: slot for slot in range(4)})
        assert all(o.error is None for o in resets.values())
        tasks = {slot: o.value[1]["task_id"] for slot, o in resets.items()}
        assert tasks[0] == tasks[2] != tasks[1] == tasks[3]
        first = pool.step({slot: o.value[1]["admissible_actions"][0] for slot, o in resets.items()})
        assert all(o.value[4]["action_valid"] for o in first.values())
    finally:
        pool.close()
