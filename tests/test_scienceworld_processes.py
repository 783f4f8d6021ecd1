"""No Java process outlives its ScienceWorld environment (slow: JVMs): a closed process
pool, a killed worker, a garbage-collected environment, a Python process that exits
without closing or is killed. Only JVMs these tests start are counted."""

import gc
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import agentgym
from agentgym.envpool import EnvMaker, EnvPool, ProcessEnvPool

pytest.importorskip("scienceworld")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None,
                       reason="needs Java (apt-get install default-jre-headless)"),
]

ENV_ID = "agentgym/ScienceWorld-v0"


def _jvms_below(pid: int) -> list[int]:
    """Java processes anywhere below ``pid`` (workers' JVMs included), zombies excluded."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.name() == "java" and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def _still_running(pids: list[int], timeout_s: float = 30.0) -> list[int]:
    """Wait on pidfds (no polling loop) until ``pids`` exit; those still running after
    ``timeout_s``."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout_s
    try:
        while fds and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                os.close(fd)
                fds.pop(fd)
    finally:
        for fd in fds:
            os.close(fd)
    alive = []
    for pid in fds.values():
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _ok(outcomes: dict) -> dict:
    assert all(o.error is None for o in outcomes.values()), outcomes
    return {slot: o.value for slot, o in outcomes.items()}


def test_a_process_pool_starts_one_jvm_per_env_reuses_it_and_stops_them_all_on_close():
    before = set(_jvms_below(os.getpid()))
    pool = EnvPool(EnvMaker.of(ENV_ID, {"task": "suite:short"}, 10), workers=2, backend="auto")
    assert isinstance(pool, ProcessEnvPool)  # the class asks for worker processes
    try:
        first = _ok(pool.reset({0: 0, 1: 1, 2: 2}))
        assert [first[s][1]["task_type"] for s in (0, 1, 2)] == [
            "find-non-living-thing", "lifespan-longest-lived", "lifespan-shortest-lived"]
        jvms = [p for p in _jvms_below(os.getpid()) if p not in before]
        assert len(jvms) == 3  # one per environment: slots 0 and 2 share worker 0
        _ok(pool.step({0: "look around", 1: "inventory", 2: "look around"}))
        _ok(pool.reset({0: 4, 1: 5, 2: 6}))  # new episodes, new tasks: the same JVMs
        assert sorted(p for p in _jvms_below(os.getpid()) if p not in before) == sorted(jvms)
    finally:
        pool.close()
    assert _still_running(jvms) == []
    assert [p for p in _jvms_below(os.getpid()) if p not in before] == []


def test_a_killed_worker_takes_its_jvm_along_and_the_pool_recovers():
    before = set(_jvms_below(os.getpid()))
    pool = EnvPool(EnvMaker.of(ENV_ID, {"task": "find-non-living-thing"}, 10), workers=1,
                   backend="process")
    try:
        _ok(pool.reset({0: 0}))
        worker = pool._workers[0].process.pid
        jvms = _jvms_below(worker)
        assert len(jvms) == 1
        os.kill(worker, signal.SIGKILL)  # what the pool does to a worker that hangs
        assert _still_running(jvms) == []
        assert pool.step({0: "look around"})[0].error  # that episode is lost ...
        obs, info = _ok(pool.reset({0: 0}))[0]           # ... a fresh worker takes over
        assert info["task_id"].startswith("find-non-living-thing:")
    finally:
        pool.close()
    assert [p for p in _jvms_below(os.getpid()) if p not in before] == []


def test_an_environment_dropped_without_close_stops_its_jvm():
    env = agentgym.make(ENV_ID, task="lifespan-shortest-lived")
    env.reset(seed=0)
    jvm = env.unwrapped._holder["engine"].pid
    del env
    gc.collect()
    assert _still_running([jvm]) == []


@pytest.mark.parametrize("ending", ["exit without close", "SIGKILL"])
def test_a_python_process_that_ends_leaves_no_jvm(ending):
    script = textwrap.dedent(f"""
        import os, signal
        import agentgym
        env = agentgym.make("{ENV_ID}", task="find-plant")
        env.reset(seed=0)
        keep = env  # referenced until the end: only process exit can stop the JVM
        print(env.unwrapped._holder["engine"].pid, flush=True)
        if {ending == "SIGKILL"}:
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180)
    expected = -signal.SIGKILL if ending == "SIGKILL" else 0
    assert proc.returncode == expected, proc.stderr
    jvm = int(proc.stdout.split()[-1])
    assert _still_running([jvm]) == []
