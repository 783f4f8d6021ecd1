"""Run chromedriver under a guard that leaves no Chromium process behind.

Usage (started by ``browser.GuardedService``, never by hand)::

    python _guard.py PARENT_PID /usr/bin/chromedriver --port=N ...

The guard makes itself a child subreaper, so every process that Chromium orphans is
re-parented to it and reaped here instead of lingering as a zombie under PID 1. It
stops chromedriver's whole process group (chromedriver, Chromium and its helpers),
reaps them all and exits when any of these happens:

- it gets SIGTERM/SIGHUP (Selenium's ``Service.stop``),
- chromedriver exits,
- its parent process is gone (the Python process crashed or was killed): the guard
  polls ``getppid`` because ``PR_SET_PDEATHSIG`` fires when the *thread* that started
  it exits, and environments are created from short-lived worker threads.

Only the standard library is imported, so it starts in a few tens of milliseconds.
"""

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36
PARENT_POLL_S = 0.5


def _direct_children() -> list[int]:
    me = str(os.getpid())
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name (2nd field) may hold spaces; fields after ')' are fixed
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == me:
            pids.append(int(name))
    return pids


def _kill_and_reap_all(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
    while True:
        for pid in _direct_children():  # anything re-parented to us after the group kill
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:  # children still dying: wait for the next SIGCHLD (bounded)
            signal.sigtimedwait([signal.SIGCHLD], 0.05)


def main() -> int:
    parent = int(sys.argv[1])
    command = sys.argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before we got here
        return 1
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            signal.pthread_sigmask(signal.SIG_SETMASK, set())
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execv(command[0], command)
        finally:
            os._exit(127)
    try:
        os.setpgid(pid, pid)
    except OSError:  # the child already did it, or already exec'd
        pass
    code = 0
    while True:
        info = signal.sigtimedwait(watched, PARENT_POLL_S)
        if os.getppid() != parent:
            break
        if info is None:
            continue
        if info.si_signo != signal.SIGCHLD:
            break
        done = False
        while True:  # reap whatever exited; stop when chromedriver itself did
            try:
                reaped, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                done = True
                break
            if reaped == 0:
                break
            if reaped == pid:
                code = os.waitstatus_to_exitcode(status)
                done = True
        if done:
            break
    _kill_and_reap_all(pid)
    return code


if __name__ == "__main__":
    sys.exit(main())
