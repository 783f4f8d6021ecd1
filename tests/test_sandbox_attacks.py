"""Sandbox escapes, in both isolation modes.

``root``: the test process (root) runs the sandbox. ``userns``: a non-root user made
by the test runs it, with a Python binary of its own in its home directory, so one
of the read-only binds (the interpreter's directory) is writable by that user on the
host, as with pyenv, conda or uv: exactly where a remount would let the code plant
``sitecustomize.py``.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox_attacks
from agentgym.envs.tooluse.sandbox import Sandbox, SandboxLimits, isolation_mode

ROOT = Path(__file__).resolve().parents[1]
LIMITS = SandboxLimits(cpu_s=1, wall_s=3.0, kill_grace_s=2.0, memory_mb=256)
SOURCES = ["agentgym/errors.py", *(f"envs/tooluse/{name}" for name in (
    "sandbox.py", "_launcher.py", "_worker.py", "_frames.py", "_seccomp.py"))]


def _system_python() -> str | None:
    """An interpreter whose standard library lives under /usr (readable by any user)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate):
            return os.path.realpath(candidate)
    return None


class UnprivilegedUser:
    """A throw-away user account with its own Python binary and the sandbox's sources."""

    def __init__(self, name: str, python: str):
        self.name = name
        subprocess.run(["useradd", "--create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        entry = pwd.getpwnam(name)
        self.home = Path(entry.pw_dir)
        self.bin = self.home / "pybin"
        self.python = self.bin / os.path.basename(python)
        self.src = self.home / "src"
        self.bin.mkdir()
        shutil.copy2(python, self.python)
        for rel in SOURCES:
            target = self.src / rel.replace("envs/", "agentgym/envs/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target)
        for package in ("agentgym", "agentgym/envs", "agentgym/envs/tooluse"):
            (self.src / package / "__init__.py").touch()
        shutil.copy2(Path(__file__).with_name("sandbox_attacks.py"), self.home / "sandbox_attacks.py")
        subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(self.home)], check=True)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", self.name, "--", "env", "-i", "PATH=/usr/bin:/bin",
                               f"HOME={self.home}", str(self.python), "-I", *args],
                              cwd=self.home, capture_output=True, text=True, timeout=300)



def remove_user(name: str) -> None:
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


@pytest.fixture(scope="module")
def unprivileged_user():
    if os.geteuid() != 0:
        pytest.skip("the userns attacks run as a user the test creates, which needs root")
    python = _system_python()
    if python is None or shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("needs useradd, runuser and a system python3 under /usr")
    name = f"agsbx{os.getpid() % 100_000}"
    try:
        user = UnprivilegedUser(name, python)
        probe = user.run("-c", "import subprocess; subprocess.run(['unshare', '--user', "
                               "'--map-root-user', '--mount', 'true'], check=True)")
        if probe.returncode != 0:
            pytest.skip(f"this kernel gives non-root users no user namespaces: {probe.stderr.strip()}")
        yield user
    finally:
        remove_user(name)


@pytest.fixture(scope="module", params=["root", "userns"])
def attacks(request):
    """(mode, the results of every scenario, the interpreter directory on the host)."""
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("isolation='root' needs the tests to run as root")
        isolation_mode("root")
        results = sandbox_attacks.play(lambda: Sandbox(LIMITS, isolation="root"))
        return "root", results, Path(os.path.realpath(sys._base_executable)).parent
    user = request.getfixturevalue("unprivileged_user")
    played = user.run("sandbox_attacks.py", str(user.src))
    assert played.returncode == 0, played.stderr[-3000:]
    return "userns", json.loads(played.stdout), user.bin


def test_the_userns_user_is_not_root(unprivileged_user):
    assert unprivileged_user.run("-c", "import os; print(os.geteuid())").stdout.strip() != "0"


def test_no_bind_can_be_remounted_read_write(attacks):
    mode, results, interpreter_dir = attacks
    output = results["remount_binds_rw"][0]["output"]
    remounts, writes = (eval(line) for line in output.splitlines())  # noqa: S307 - our own dicts
    assert remounts and all(outcome == "EPERM" for outcome in remounts.values()), (mode, remounts)
    assert "ok" not in writes.values() and writes[str(interpreter_dir)] == "EROFS", (mode, writes)
    assert not (interpreter_dir / "sitecustomize.py").exists()


def test_the_python_prefix_cannot_be_written(attacks):
    mode, results, interpreter_dir = attacks
    into_binary_dir, into_stdlib = results["write_python_prefix"][0]["output"].split()
    assert into_binary_dir == "EROFS" and into_stdlib in ("EROFS", "ENOENT"), (mode, into_stdlib)
    assert not (interpreter_dir / "pwned.py").exists()


def test_no_new_namespace_and_no_mount_inside_one(attacks):
    mode, results, _ = attacks
    syscalls, through_the_binary = results["unshare_then_mount"]
    assert syscalls["output"].split() == ["EPERM", "EPERM", "EPERM"], mode
    assert through_the_binary["output"] == "True\n", (mode, through_the_binary)


def test_pivot_root_umount_ptrace_clone_and_chroot_are_denied(attacks):
    mode, results, _ = attacks
    assert results["other_kernel_doors"][0]["output"].split() == ["EPERM"] * 5, mode


def test_background_processes_die_with_their_cell_even_if_the_code_disables_cleanup(attacks):
    mode, results, _ = attacks
    started, after = results["background_processes"]
    assert started["output"] == "'started'\n" and started["processes"] == 2, (mode, started)
    assert after["output"] == "'after'\n" and after["processes"] == 2, (mode, after)


def test_forged_reply_frames_never_become_results(attacks):
    mode, results, _ = attacks
    outputs = [cell["output"] for cell in results["forged_frames"]]
    assert outputs[:2] == ["'real one'\n", "'second'\n"], (mode, outputs)
    # a frame forged with the current request's nonce (read from the worker's memory) can
    # only stand in for the cell that wrote it: the next result is still the next cell's
    assert outputs[2] in ("'third'\n", "FORGED WITH NONCE") and outputs[3] == "'fourth'\n", (mode, outputs)
    assert not any(cell["restarted"] for cell in results["forged_frames"])


def test_documented_attacks_fail_in_this_mode_too(attacks):
    mode, results, _ = attacks
    *reads, listing = results["host_files"]
    assert all("FileNotFoundError" in (cell["error"] or "") for cell in reads), (mode, reads)
    assert not {"etc", "proc", "tmp", "var"} & set(eval(listing["output"]))  # noqa: S307
    for cell in results["write_outside_work"]:
        assert "Read-only file system" in cell["error"] or "Permission" in cell["error"], (mode, cell)
    assert "unreachable" in results["network"][0]["error"].lower(), mode
    bomb, after = results["fork_bomb"]
    assert bomb["error"] and after["output"] == "4\n" and after["processes"] == 2, (mode, bomb, after)

