"""Hung environment calls end only their own episode, free their slot, never block exit.

A hung call blocks on an Event nobody sets (in a worker process, one the test cannot
reach); timeouts are a fraction of a second, and nothing here waits by sleeping.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import agentgym
from agentgym.rollout.envpool import EnvPool
from tests.toy_envs import GuessEnv

NEVER = threading.Event()


class HangOnRequest(GuessEnv):
    """GuessEnv that hangs forever on the action "hang"."""

    def step(self, action):
        if action == "hang":
            NEVER.wait()
        return super().step(action)


agentgym.register("test/HangOnRequest-v0", entry_point=HangOnRequest, max_episode_steps=10)


@pytest.fixture(autouse=True)
def _release_abandoned_threads():
    yield
    NEVER.set()          # lets this process's abandoned threads finish after the test
    NEVER.clear()


def test_more_hung_calls_than_workers_all_time_out_and_the_rest_still_run():
    pool = EnvPool(HangOnRequest, workers=2, timeout_s=0.2)
    try:
        assert all(o.error is None for o in pool.reset({s: s for s in range(6)}).values())
        out = pool.step({0: "hang", 1: "hang", 2: "hang", 3: "hang", 4: "guess 1", 5: "guess 2"})
        assert [s for s, o in out.items() if o.timed_out] == [0, 1, 2, 3]
        assert out[4].error is None and out[5].error is None
        # the hung slots are free again: a reset gives them fresh environments
        assert all(o.error is None for o in pool.reset({0: 7, 1: 8}).values())
    finally:
        pool.close()


def test_a_hung_thread_does_not_keep_the_process_alive():
    script = (
        "from agentgym.rollout.envpool import EnvPool\n"
        "from tests.test_envpool_hangs import HangOnRequest\n"
        "pool = EnvPool(HangOnRequest, workers=1, timeout_s=0.1)\n"
        "pool.reset({0: 1})\n"
        "print(pool.step({0: 'hang'})[0].error, flush=True)\n"
        "pool.close()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Timeout")


def test_process_pool_one_hung_slot_keeps_the_episodes_sharing_its_worker():
    pool = EnvPool(HangOnRequest, workers=1, timeout_s=1.0, backend="process")
    try:
        resets = pool.reset({0: 1, 1: 2, 2: 3})
        assert all(o.error is None for o in resets.values())
        first = pool.step({0: "guess 1", 1: "hang", 2: "guess 2"})
        assert first[1].timed_out
        assert first[0].error is None and first[2].error is None, first
        # the healthy episodes go on where they were, in the fresh worker
        second = pool.step({0: "guess 3", 2: "guess 4"})
        assert second[0].error is None and second[2].error is None, second
        assert second[0].value[4]["anchor"] == "tries=[1, 3]"
        assert second[2].value[4]["anchor"] == "tries=[2, 4]"
        assert pool.reset({1: 5})[1].error is None        # the hung slot starts over
    finally:
        pool.close()
