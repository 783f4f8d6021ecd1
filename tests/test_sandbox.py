"""The Python sandbox: every limit comes back as a tool error and the run continues."""

import os
import socket

import pytest

from agentgym.envs.tooluse.sandbox import Sandbox, SandboxLimits, SandboxUnavailable, isolation_mode

try:
    MODE = isolation_mode()
except SandboxUnavailable as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"no sandbox on this machine: {e}", allow_module_level=True)

LIMITS = SandboxLimits(cpu_s=1, wall_s=1.5, kill_grace_s=1.0, memory_mb=256, max_output=2_000)


@pytest.fixture
def sandbox():
    with Sandbox(LIMITS) as sb:
        yield sb


def test_runs_code_and_keeps_state_like_a_notebook(sandbox):
    assert sandbox.run("x = 20\nx + 1").output == "21\n"
    result = sandbox.run("print('hello'); x * 2")
    assert result.ok and result.output == "hello\n40\n" and not result.restarted


def test_exceptions_are_tool_errors(sandbox):
    result = sandbox.run("1 / 0")
    assert "ZeroDivisionError" in result.error and "<cell 1>" in result.error
    assert "Tool error" in result.render()
    assert sandbox.run("y = 1; y").output == "1\n"


def test_infinite_loop_is_stopped_and_state_survives(sandbox):
    sandbox.run("kept = 7")
    result = sandbox.run("while True:\n    pass")
    assert "time limit exceeded" in result.error
    assert sandbox.run("kept").output == "7\n"


def test_code_that_blocks_the_timers_is_killed_and_the_interpreter_restarts(sandbox):
    sandbox.run("kept = 7")
    # the cell blocks the worker's own timeout signals: only the host's kill stops it
    result = sandbox.run("import signal\n"
                         "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGXCPU})\n"
                         "while True:\n    pass")
    assert result.restarted and "wall-clock time limit" in result.error
    after = sandbox.run("kept")
    assert "NameError" in after.error          # fresh interpreter: the state is gone
    assert sandbox.run("2 + 2").output == "4\n"


def test_fork_bomb_is_contained(sandbox):
    result = sandbox.run("import os\nwhile True:\n    os.fork()")
    assert result.error and ("BlockingIOError" in result.error or "limit" in result.error)
    assert sandbox.run("2 + 2").output == "4\n"
    if MODE == "root":   # forked children were killed after the cell: only the interpreter lives
        assert len(_live_processes_of(sandbox.uid)) == 1


def _live_processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError, PermissionError):
            continue
        if int(status["Uid"].split()[0]) == uid and not status["State"].strip().startswith(("Z", "X")):
            pids.append(int(entry))
    return pids


def test_huge_allocation_is_a_memory_error(sandbox):
    result = sandbox.run("block = bytearray(2 * 1024 ** 3)")
    assert "MemoryError" in result.error
    assert sandbox.run("len(bytearray(10 ** 6))").output == "1000000\n"


def test_no_network_even_to_the_hosts_loopback(sandbox):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        result = sandbox.run(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)")
        assert result.error and ("refused" in result.error or "unreachable" in result.error.lower())
        with pytest.raises(BlockingIOError):
            listener.accept()                  # nothing ever reached the host
        outside = sandbox.run("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)")
        assert "unreachable" in outside.error.lower() or "OSError" in outside.error
    finally:
        listener.close()


def test_host_secrets_are_not_visible(sandbox, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    for path in (str(secret), "/etc/shadow", "/etc/passwd", os.path.expanduser("~/.bashrc")):
        result = sandbox.run(f"open({path!r}).read()")
        assert "FileNotFoundError" in result.error, path
    listing = sandbox.run("import os; sorted(os.listdir('/'))").output
    assert "etc" not in listing and "proc" not in listing and "home" not in listing


def test_cannot_write_outside_the_working_directory(sandbox, tmp_path):
    target = tmp_path / "pwned.txt"
    assert "FileNotFoundError" in sandbox.run(f"open({str(target)!r}, 'w').write('x')").error
    assert not target.exists()
    for path in ("/usr/pwned", "/pwned", "/dev/pwned"):
        result = sandbox.run(f"open({path!r}, 'w').write('x')")
        assert "Read-only file system" in result.error or "Permission" in result.error, path
    # the working directory is writable, and throw-away
    assert sandbox.run("open('notes.txt', 'w').write('abc')\nopen('notes.txt').read()").output == "'abc'\n"
    sandbox.reset()
    assert "FileNotFoundError" in sandbox.run("open('notes.txt').read()").error


def test_runs_unprivileged():
    if MODE != "root":
        pytest.skip("the uid drop happens only when the host runs as root")
    with Sandbox(LIMITS) as sb, Sandbox(LIMITS) as other:
        assert sb.run("import os; (os.getuid(), os.getgid())").output == f"{(sb.uid, sb.uid)}\n"
        assert other.uid != sb.uid and sb.uid >= 1_000_000


def test_output_is_capped(sandbox):
    result = sandbox.run("print('y' * 100_000)")
    assert result.truncated and len(result.output) <= LIMITS.max_output
    assert "[output truncated]" in result.render()
    # raw writes to the process's own stdout cannot corrupt the protocol
    assert sandbox.run("import os; os.write(1, b'garbage' * 1000); 5").output == "5\n"


def test_exit_and_crash_restart_cleanly(sandbox):
    result = sandbox.run("import os; os._exit(3)")
    assert result.restarted and "died" in result.error
    assert sandbox.run("3 * 3").output == "9\n"
    assert "SystemExit" in sandbox.run("raise SystemExit(1)").error


def test_bad_isolation_mode_is_a_clear_error():
    with pytest.raises(SandboxUnavailable, match="isolation must be"):
        Sandbox(isolation="none")
