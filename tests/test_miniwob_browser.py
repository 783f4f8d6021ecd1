"""MiniWoB++ in real headless Chromium: contract, scripted solver, clean-up (slow)."""

import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import agentgym
from agentgym.checker import check_env

pytest.importorskip("miniwob")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("chromedriver") or os.environ.get("MINIWOB_CHROMEDRIVER")),
                       reason="needs chromium + chromedriver (apt-get install chromium chromium-driver)"),
]


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command name) for every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(name)] = (int(fields[1]), fields[0], comm)
    return out


def _descendants(root: int) -> dict[int, tuple[int, str, str]]:
    procs = _processes()
    found, frontier = {}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, info in procs.items():
            if info[0] == parent and pid not in found:
                found[pid] = info
                frontier.append(pid)
    return found


def _browser_leftovers(before: set[int]) -> list:
    """Chromium-related or zombie processes under this test process that were not there
    ``before`` (other tests in the session may own long-lived helpers, such as
    multiprocessing's resource tracker)."""
    return [(pid, info) for pid, info in _descendants(os.getpid()).items()
            if pid not in before
            and (info[1] == "Z" or "chrom" in info[2].lower() or info[2].startswith("python"))]


def test_contract_holds_for_a_set_of_tasks():
    env = agentgym.make("agentgym/MiniWoB-v0", task="click-test,click-button,enter-text,"
                        "click-link,click-checkboxes,focus-text")
    report = check_env(env, episodes=4)
    assert report.ok, [(r.name, r.detail) for r in report.failures]


def test_scripted_agent_solves_the_simple_tasks_through_the_text_syntax():
    from agentgym.envs.miniwob.solver import SOLVED_TASKS

    env = agentgym.make("agentgym/MiniWoB-v0", task="suite:simple")
    wins = {}
    try:
        for seed in range(9):
            obs, info = env.reset(seed=seed)
            plan = env.unwrapped.walkthrough()
            assert plan, obs
            for action in plan:
                obs, reward, terminated, truncated, info = env.step(action)
                assert info["action_valid"]
            assert terminated and reward == 1.0 and info["won"]
            wins[info["task_type"]] = wins.get(info["task_type"], 0) + 1
    finally:
        env.close()
    assert wins == {task: 3 for task in SOLVED_TASKS}


def test_invalid_actions_wrong_answers_and_the_lifted_clock():
    before = set(_descendants(os.getpid()))
    env = agentgym.make("agentgym/MiniWoB-v0", task="click-button")
    try:
        obs, info = env.reset(seed=1)
        assert info["image"].shape == (210, 160, 3) and info["image"].dtype.name == "uint8"
        browser = env.unwrapped._holder["browser"]
        assert browser.driver.execute_script("return core.EPISODE_MAX_TIME") == 3_600_000
        for bad in ["click(999)", "click_xy(500, 5)", "do something", 'type(1, "x"']:
            obs2, reward, terminated, truncated, info = env.step(bad)
            assert not info["action_valid"] and obs2 == obs and not terminated
            assert info["invalid_reason"]
        for seed in range(1, 20):  # an instance with a wrong button to press
            obs, info = env.reset(seed=seed)
            buttons = [f"click({line.split(']')[0].strip(' [')})" for line in obs.splitlines()
                       if "] button" in line]
            wrong = [a for a in buttons if a not in env.unwrapped.walkthrough()]
            if wrong:
                break
        obs, reward, terminated, truncated, info = env.step(wrong[0])
        assert terminated and reward == -1.0 and not info["won"]  # the raw reward
        # a crashed browser: the step raises, the next reset starts a fresh one
        env.reset(seed=2)
        chrome = [pid for pid, (_, state, comm) in _descendants(os.getpid()).items()
                  if comm == "chromium"]
        for pid in chrome:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(Exception):
            env.step(env.unwrapped.walkthrough()[0])
        obs, info = env.reset(seed=3)
        assert env.step(env.unwrapped.walkthrough()[0])[1] == 1.0
    finally:
        env.close()
    assert _browser_leftovers(before) == []


def test_200_episodes_in_parallel_threads_leave_no_processes():
    before = set(_descendants(os.getpid()))
    errors, wins = [], []

    def worker(k: int) -> None:
        try:
            for _ in range(2):  # create/close twice per thread
                env = agentgym.make("agentgym/MiniWoB-v0", task="click-test", screenshot=False)
                try:
                    for e in range(25):
                        env.reset(seed=100 * k + e)
                        won = env.step(env.unwrapped.walkthrough()[0])[4]["won"]
                        wins.append(won)
                finally:
                    env.close()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(wins) == 200 and all(wins)
    assert _browser_leftovers(before) == []


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait (on pidfds, no polling) until ``pids`` exit; returns those still alive."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    remaining = dict(fds)
    try:
        while remaining:
            ready, _, _ = select.select(list(remaining), [], [], timeout)
            if not ready:
                break
            for fd in ready:
                remaining.pop(fd)
    finally:
        for fd in fds:
            os.close(fd)
    return [p for p in remaining.values() if p in _processes() and _processes()[p][1] != "Z"]


def test_a_killed_python_process_leaves_no_chromium_behind():
    script = textwrap.dedent("""
        import os, signal, sys
        import agentgym
        env = agentgym.make("agentgym/MiniWoB-v0", task="click-test")
        env.reset(seed=0)
        me = str(os.getpid())
        pids = []
        procs = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    stat = open(f"/proc/{name}/stat").read()
                except OSError:
                    continue
                procs[int(name)] = int(stat[stat.rindex(")") + 2:].split()[1])
        frontier = [os.getpid()]
        while frontier:
            parent = frontier.pop()
            kids = [p for p, pp in procs.items() if pp == parent]
            pids += kids
            frontier += kids
        print(" ".join(map(str, pids)), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) >= 3  # guard, chromedriver, chromium and its helpers
    assert _wait_gone(pids, timeout=30) == []
    leftovers = [(p, i) for p, i in _processes().items()
                 if p in pids and i[1] == "Z" and "chrom" in i[2].lower()]
    assert leftovers == []
