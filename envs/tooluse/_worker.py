"""The interpreter inside the sandbox: runs cells like a notebook, one process per episode.

Protocol (``_frames``): requests from the launcher arrive on fd 0:
``{"code": str, "cpu_s": int, "wall_s": float, "max_output": int, "nonce": str}``.
Replies go to fd 3: ``{"nonce": str, "output": str, "error": str | null, "truncated":
bool}``; a ``{"ready": true}`` frame is sent first. fds 1 and 2 are /dev/null, so the
code's prints go to a capped buffer and raw writes to fd 1/2 are lost. The launcher,
not this process, decides what reaches the host: it takes only the reply carrying the
current request's nonce, and it kills whatever the cell left running.

Per cell: a soft CPU limit (SIGXCPU) and a wall-clock alarm (SIGALRM) stop the cell
with an error and keep the notebook's state; the host still kills the whole sandbox
if a cell outlives the wall limit by a grace period (code stuck in C, signals
blocked). After each cell the launcher kills every other process in the namespace, so
forked children and background processes never outlive their cell.

Standard library only; copied into the sandbox root by the launcher.
"""

import ast
import builtins
import math
import os
import random
import resource
import signal
import sys
import traceback

from _frames import read_frame, write_frame

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


def _reap_children() -> None:
    """Collect the children the launcher killed after the last cell."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def serve() -> None:
    reply_fd = 3
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
        _reap_children()
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
        write_frame(reply_fd, {"nonce": request["nonce"], "output": out.getvalue(),
                               "error": error, "truncated": out.truncated})


if __name__ == "__main__":
    serve()
