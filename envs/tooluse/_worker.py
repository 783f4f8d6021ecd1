"""The interpreter inside the sandbox: runs cells like a notebook, one process per episode.

Protocol: frames of a 4-byte big-endian length and UTF-8 JSON. Requests arrive on
stdin: ``{"code": str, "cpu_s": int, "wall_s": float, "max_output": int}``. Replies
go to the original stdout: ``{"output": str, "error": str | null, "truncated": bool}``;
a ``{"ready": true}`` frame is sent first. fds 1 and 2 then point at /dev/null, so the
code's prints go to a capped buffer and raw writes to fd 1/2 are lost, not mixed into
the protocol.

Per cell: a soft CPU limit (SIGXCPU) and a wall-clock alarm (SIGALRM) stop the cell
with an error and keep the notebook's state; the host still kills the whole sandbox
if a cell outlives the wall limit by a grace period (code stuck in C, signals
blocked). After each cell every other process in the namespace is killed, so forked
children and background processes never outlive their cell.

Standard library only; copied into the sandbox root by the launcher.
"""

import ast
import builtins
import json
import math
import os
import random
import resource
import signal
import struct
import sys
import time
import traceback

MAIN_PID = os.getpid()


class CellTimeout(BaseException):
    """Raised in the cell by the CPU or wall-clock signal (BaseException: a bare
    ``except Exception`` in the agent's code does not swallow it)."""


class CappedText:
    """A text stream that keeps at most ``limit`` characters."""

    def __init__(self, limit: int):
        self.limit, self.parts, self.size, self.truncated = limit, [], 0, False

    def write(self, text) -> int:
        text = str(text)
        room = self.limit - self.size
        if len(text) > room:
            self.truncated = True
            text = text[:max(room, 0)]
        if text:
            self.parts.append(text)
            self.size += len(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def getvalue(self) -> str:
        return "".join(self.parts)


def _on_signal(signum, frame):
    what = "CPU time" if signum == signal.SIGXCPU else "wall-clock time"
    raise CellTimeout(f"{what} limit exceeded")


def read_frame(fd: int):
    header = _read_exact(fd, 4)
    if header is None:
        return None
    return json.loads(_read_exact(fd, struct.unpack(">I", header)[0]).decode("utf-8"))


def _read_exact(fd: int, n: int):
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, obj) -> None:
    data = json.dumps(obj).encode("utf-8")
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _format_error(exc: BaseException) -> str:
    if isinstance(exc, CellTimeout):
        return f"TimeoutError: {exc}"
    if isinstance(exc, MemoryError):
        return "MemoryError: the memory limit was exceeded"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
    lines = traceback.format_list(frames) if frames else []
    text = "".join(["Traceback (most recent call last):\n"] + lines if lines else [])
    return text + "".join(traceback.format_exception_only(type(exc), exc))


def run_cell(code: str, index: int, namespace: dict) -> None:
    name = f"<cell {index}>"
    tree = ast.parse(code, name)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):     # show the last value, like a notebook
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, name, "exec"), namespace)
    if last is not None:
        value = eval(compile(last, name, "eval"), namespace)
        if value is not None:
            print(repr(value))


def _kill_the_rest() -> None:
    """SIGKILL every other process in the namespace, and wait (up to 1 s) until they are
    gone: our children reaped here, orphans by the launcher (PID 1)."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            os.kill(-1, signal.SIGKILL)  # every process we may signal in this namespace but us
        except (ProcessLookupError, PermissionError):
            return
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if time.monotonic() > deadline:
            return
        time.sleep(0.002)


def serve() -> None:
    reply_fd = os.dup(1)
    devnull = os.open("/dev/null", os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    signal.signal(signal.SIGXCPU, _on_signal)
    signal.signal(signal.SIGALRM, _on_signal)
    random.seed(0)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    write_frame(reply_fd, {"ready": True})
    index = 0
    while True:
        request = read_frame(0)
        if request is None:
            return
        index += 1
        out = CappedText(int(request["max_output"]))
        sys.stdout = sys.stderr = out
        error = None
        try:
            soft = math.ceil(_cpu_used()) + int(request["cpu_s"])
            if hard_cpu != resource.RLIM_INFINITY:
                soft = min(soft, hard_cpu)
            resource.setrlimit(resource.RLIMIT_CPU, (soft, hard_cpu))
            signal.setitimer(signal.ITIMER_REAL, float(request["wall_s"]))
            try:
                run_cell(request["code"], index, namespace)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except BaseException as exc:  # noqa: BLE001 - every failure is the agent's tool error
            if os.getpid() != MAIN_PID:
                os._exit(0)
            error = _format_error(exc)
        if os.getpid() != MAIN_PID:       # a forked child finished the cell: it must not serve
            os._exit(0)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        _kill_the_rest()
        write_frame(reply_fd, {"output": out.getvalue(), "error": error, "truncated": out.truncated})


if __name__ == "__main__":
    serve()
