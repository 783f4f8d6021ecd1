"""A sandboxed Python interpreter for tool calls: OS-level isolation, not Python tricks.

Each ``Sandbox`` owns one interpreter process that lives for one episode, so state
persists across calls like a notebook. The process runs:

- in its own **network namespace** (no interfaces but a down loopback: every
  connection fails, the host's 127.0.0.1 included);
- in its own **mount namespace** whose root is a read-only tmpfs holding only
  read-only bind mounts of ``/usr``, ``/lib*``, ``/bin`` and the Python installation,
  ``/dev/{null,zero,urandom,random}`` and a size-limited tmpfs at ``/work``, the
  working directory (``pivot_root`` + detach: no other host path exists there, so host
  files can be neither read nor written; ``/work`` vanishes with the namespace);
- in its own **pid, ipc and uts namespaces** (it sees and signals only its own
  processes; when it dies every process it started dies with it);
- with no capability over the namespaces holding its mounts (every set emptied,
  ``SECBIT_NOROOT`` locked), ``no_new_privs`` and a seccomp filter against mount,
  namespace, ptrace and kernel-loading calls (``_seccomp.py``); in ``root`` mode also
  as an unprivileged uid/gid of its own (``UID_BASE`` + a per-process counter, a uid no
  host account uses). A uid per sandbox makes ``RLIMIT_NPROC``, which the kernel counts
  per uid, a limit on this sandbox alone;
- under **rlimits**: address space (memory), CPU seconds (a hard cap per episode, a
  soft one per call), processes (``RLIMIT_NPROC``, against fork bombs), file size,
  open files, no core dumps.

The launcher (``_launcher.py``, PID 1 of the namespace) relays each call, accepts only
the reply carrying that call's nonce, and kills every process the cell left behind
before it answers. Per call, the host enforces the wall-clock limit (a grace period after the worker's
own alarm, then the whole sandbox is killed) and the output size (the worker keeps at
most ``max_output`` characters; the host refuses replies larger than that).

A call that breaks a limit comes back as a ``ToolResult`` with ``error`` set; when the
interpreter process had to be killed (or died), the result says that its state was
lost and the next call starts a fresh interpreter. Nothing here raises on bad code.

Isolation modes (``isolation=``): ``"auto"`` picks ``"root"`` when running as root
(everything above) and ``"userns"`` otherwise (the same namespaces inside an
unprivileged user namespace: the code runs as the namespace's uid 0, mapped to the
calling user, without any capability; ``RLIMIT_NPROC`` then counts the calling user's
processes).
Where neither works, ``SandboxUnavailable`` says why; there is no insecure fallback.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from agentgym.errors import AgentGymError

_HERE = Path(__file__).resolve().parent
_READY_TIMEOUT_S = 30.0
EXIT_PROTOCOL, EXIT_CLEANUP = 71, 72   # the launcher's own exit statuses
UID_BASE = 1_200_000          # sandbox uids: UID_BASE + (pid % 1000) * 1000 + counter
_uids = itertools.count()


class SandboxUnavailable(AgentGymError):
    """This machine cannot create the namespaces the sandbox needs."""


@dataclass(frozen=True)
class SandboxLimits:
    cpu_s: int = 5                    # CPU seconds per call (soft: the cell gets an error)
    wall_s: float = 10.0              # wall-clock seconds per call
    episode_cpu_s: int = 60           # hard CPU cap for the interpreter's whole life
    memory_mb: int = 512              # address space of the interpreter
    max_output: int = 4_000           # characters of output kept per call
    max_processes: int = 16           # RLIMIT_NPROC: processes + threads of this sandbox
    file_size_mb: int = 8             # largest file the code may write
    workdir_mb: int = 16              # size of the throw-away working directory
    open_files: int = 64
    kill_grace_s: float = 2.0         # after wall_s, how long before the host kills


@dataclass
class ToolResult:
    output: str
    error: str | None = None          # the tool error the agent should see
    restarted: bool = False           # the interpreter was killed: its state is gone
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def render(self) -> str:
        """The observation text for the agent."""
        parts = []
        if self.output:
            parts.append(self.output.rstrip("\n"))
        if self.truncated:
            parts.append("[output truncated]")
        if self.error:
            parts.append(f"Tool error: {self.error.rstrip()}")
        if self.restarted:
            parts.append("(The interpreter was restarted; variables from earlier calls are gone.)")
        return "\n".join(parts) if parts else "(no output)"


def _python_executable() -> str:
    """The real interpreter binary (not a venv symlink: the venv is not mounted)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _readonly_paths(python: str) -> list[str]:
    paths = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"]
    prefix = os.path.realpath(sys.base_prefix)
    if not any(prefix == p or prefix.startswith(p + "/") for p in paths):
        paths.append(prefix)
    binary_dir = os.path.dirname(python)
    if not any(binary_dir == p or binary_dir.startswith(p + "/") for p in paths):
        paths.append(binary_dir)
    return paths


def isolation_mode(requested: str = "auto") -> str:
    """``"root"`` or ``"userns"``; raises SandboxUnavailable when neither can work."""
    if requested not in ("auto", "root", "userns"):
        raise SandboxUnavailable(f"isolation must be auto, root or userns, not {requested!r}")
    if shutil.which("unshare") is None:
        raise SandboxUnavailable("the Python sandbox needs util-linux `unshare` "
                                 "(apt-get install util-linux)")
    if requested == "auto":
        requested = "root" if os.geteuid() == 0 else "userns"
    if requested == "root" and os.geteuid() != 0:
        raise SandboxUnavailable("isolation='root' needs the host process to run as root; "
                                 "use isolation='userns'")
    if requested == "userns":
        problem = _userns_problem()
        if problem is not None:
            raise SandboxUnavailable(
                f"cannot create user namespaces here ({problem}); run as root or enable "
                "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")
    return requested


@lru_cache(maxsize=1)
def _userns_problem() -> str | None:
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", "true"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else (probe.stderr.strip() or "unshare failed")


class Sandbox:
    """One sandboxed interpreter, started on the first call, stopped by ``close``."""

    def __init__(self, limits: SandboxLimits | None = None, isolation: str = "auto"):
        self.limits = limits or SandboxLimits()
        self.mode = isolation_mode(isolation)
        self.uid = (UID_BASE + (os.getpid() % 1000) * 1000 + next(_uids) % 1000
                    if self.mode == "root" else None)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.calls = 0
        self.restarts = 0

    # -- process lifecycle -------------------------------------------------
    def _command(self) -> list[str]:
        python = _python_executable()
        lim = self.limits
        cfg = {
            "python": python,
            "worker": str(_HERE / "_worker.py"),
            "readonly": _readonly_paths(python),
            "mountpoint": "/mnt" if os.path.isdir("/mnt") else "/tmp",
            "workdir_bytes": lim.workdir_mb << 20,
            "uid": self.uid,
            "max_reply": self._max_reply(),
            "rlimits": {
                "RLIMIT_AS": lim.memory_mb << 20,
                "RLIMIT_CPU": lim.episode_cpu_s,
                "RLIMIT_NPROC": lim.max_processes,
                "RLIMIT_FSIZE": lim.file_size_mb << 20,
                "RLIMIT_NOFILE": lim.open_files,
                "RLIMIT_CORE": 0,
            },
        }
        ns = ["--user", "--map-root-user"] if self.mode == "userns" else []
        return ["unshare", *ns, "--net", "--mount", "--pid", "--ipc", "--uts", "--fork",
                "--kill-child", python, "-I", "-S", str(_HERE / "_launcher.py"), json.dumps(cfg)]

    def _start(self) -> str | None:
        """Start the interpreter; the setup error text when it does not come up."""
        self._proc = subprocess.Popen(self._command(), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True)
        frame, problem = self._read_frame(time.monotonic() + _READY_TIMEOUT_S, 1024)
        if frame == {"ready": True}:
            return None
        stderr = self._kill()
        return stderr.strip() or problem or "the interpreter did not start"

    def _kill(self) -> str:
        """Kill the sandbox (its pid namespace dies with it); returns its stderr."""
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.kill()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            return ""
        return err.decode("utf-8", "replace")[-2000:]

    def close(self) -> None:
        with self._lock:
            self._kill()

    def reset(self) -> None:
        """Forget all state: the next call starts a fresh interpreter."""
        self.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self._kill()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- framing --------------------------------------------------------------
    def _read_frame(self, deadline: float, max_bytes: int) -> tuple[dict | None, str | None]:
        """(frame, None), or (None, why not: "timeout", "died", "oversized", "garbled")."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        header = self._read_exact(fd, 4, deadline)
        if not isinstance(header, bytes):
            return None, header
        size = struct.unpack(">I", header)[0]
        if size > max_bytes:
            return None, "oversized"
        body = self._read_exact(fd, size, deadline)
        if not isinstance(body, bytes):
            return None, body
        try:
            frame = json.loads(body.decode("utf-8"))
        except ValueError:
            return None, "garbled"
        return (frame, None) if isinstance(frame, dict) else (None, "garbled")

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes | str:
        data = b""
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return "timeout"
            chunk = os.read(fd, n - len(data))
            if not chunk:
                return "died"
            data += chunk
        return data

    # -- calls ------------------------------------------------------------------
    def run(self, code: str) -> ToolResult:
        """Run one cell; never raises for anything the code does."""
        with self._lock:
            self.calls += 1
            lim = self.limits
            restarted = False
            if self._proc is None or self._proc.poll() is not None:
                fresh = self._proc is not None
                self._kill()
                problem = self._start()
                if problem is not None:
                    return ToolResult("", f"the interpreter could not start: {problem}", True)
                restarted = fresh
            request = {"code": code, "cpu_s": lim.cpu_s, "wall_s": lim.wall_s,
                       "max_output": lim.max_output}
            data = json.dumps(request).encode("utf-8")
            try:
                assert self._proc is not None and self._proc.stdin is not None
                self._proc.stdin.write(struct.pack(">I", len(data)) + data)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill()
                return ToolResult("", "the interpreter stopped unexpectedly", True)
            deadline = time.monotonic() + lim.wall_s + lim.kill_grace_s
            frame, problem = self._read_frame(deadline, self._max_reply())
            if frame is not None and "output" in frame:
                return ToolResult(str(frame.get("output", "")), frame.get("error"),
                                  restarted, bool(frame.get("truncated")))
            returncode = self._proc.poll() if self._proc else None
            self._kill()
            self.restarts += 1
            return ToolResult("", self._explain(problem, returncode), True)

    def _max_reply(self) -> int:
        # worst case every character is escaped as \uXXXX, plus the traceback
        return 6 * self.limits.max_output + 65_536

    def _explain(self, problem: str | None, returncode: int | None) -> str:
        lim = self.limits
        if problem == "timeout":
            return f"wall-clock time limit exceeded ({lim.wall_s:g} s); the interpreter was killed"
        if problem == "oversized":
            return f"output limit exceeded ({lim.max_output} characters)"
        if problem == "garbled":
            return "the interpreter's reply was unreadable (did the code write to its file descriptors?)"
        if returncode == EXIT_PROTOCOL:
            return "the interpreter's reply was unreadable (did the code write to its reply channel?)"
        if returncode == EXIT_CLEANUP:
            return "processes the code started could not be stopped; the interpreter was killed"
        signals = {128 + 9: "SIGKILL: CPU time or memory limit", 128 + 24: "SIGXCPU: CPU time limit",
                   128 + 11: "SIGSEGV, often the memory limit", 128 + 6: "SIGABRT",
                   128 + 31: "SIGSYS: a system call the sandbox forbids"}
        why = signals.get(returncode or 0, f"exit status {returncode}")
        return f"the interpreter process died ({why})"

    def info(self) -> dict:
        return {"mode": self.mode, "calls": self.calls, "restarts": self.restarts,
                "limits": asdict(self.limits)}
