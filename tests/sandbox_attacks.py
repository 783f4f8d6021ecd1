"""Attacks on the Python sandbox, as data, and the runner that plays them.

Standard library plus the sandbox only: ``test_sandbox_attacks.py`` runs them in the
test process (``isolation="root"``) and copies this file next to the sandbox's own
sources for a non-root user it creates, who runs them with ``isolation="userns"``.
Each scenario is a list of cells played in one fresh sandbox; each result records the
tool result and how many processes of the sandbox were alive on the host afterwards.
"""

import json
import os
import sys

PRELUDE = """
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
MS_REMOUNT, MS_BIND = 32, 4096
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
def attempt(call):
    rc = call()
    return 'ok' if rc == 0 else errno.errorcode.get(ctypes.get_errno(), '?')
def write(path):
    try:
        with open(path, 'w') as f:
            f.write('import os  # planted by the sandboxed code\\n')
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, '?')
binds = sorted({os.path.dirname(sys.executable), sys.prefix, os.path.dirname(os.__file__), '/usr', '/'})
"""

SCENARIOS = {
    # the escape of issue 17: make a read-only bind writable, then plant code in it
    "remount_binds_rw": [PRELUDE + """
print({p: attempt(lambda: libc.mount(None, p.encode(), None, ctypes.c_ulong(MS_REMOUNT | MS_BIND), None))
       for p in binds})
print({p: write(os.path.join(p, 'sitecustomize.py')) for p in binds})
"""],
    "write_python_prefix": [PRELUDE + """
print(write(os.path.join(os.path.dirname(sys.executable), 'pwned.py')),
      write(os.path.join(os.path.dirname(os.__file__), 'sitecustomize.py')))
"""],
    # a namespace of its own would give the code every capability there
    "unshare_then_mount": [PRELUDE + """
print(attempt(lambda: libc.unshare(CLONE_NEWUSER | CLONE_NEWNS)),
      attempt(lambda: libc.unshare(CLONE_NEWNS)),
      attempt(lambda: libc.mount(b'tmpfs', b'/work', b'tmpfs', ctypes.c_ulong(0), None)))
""", """
import subprocess
r = subprocess.run(['unshare', '--user', '--map-root-user', '--mount', 'sh', '-c',
                    'mount -o remount,bind,rw / && echo REMOUNTED'], capture_output=True, text=True)
print(r.returncode != 0 and 'REMOUNTED' not in r.stdout)
"""],
    "other_kernel_doors": [PRELUDE + """
print(attempt(lambda: libc.syscall({pivot_root}, b'/work', b'/work')),
      attempt(lambda: libc.umount2(b'/usr', 2)),
      attempt(lambda: libc.ptrace(16, 1, None, None)),          # PTRACE_ATTACH to the launcher
      attempt(lambda: libc.syscall({clone}, CLONE_NEWUSER | 17, 0, 0, 0, 0)),
      attempt(lambda: libc.chroot(b'/work')))
"""],
    # the cleanup must not be something the code can switch off
    "background_processes": ["""
import os, sys
main = sys.modules['__main__']
for name in dir(main):             # whatever might clean up after the cell
    if any(word in name for word in ('kill', 'reap', 'clean')):
        setattr(main, name, lambda *a, **k: None)
if os.fork() == 0:
    os.setsid()                    # leave the process group too
    if os.fork() == 0:
        while True:
            pass
    while True:
        pass
'started'
""", "'after'"],
    # frames written to the reply channel must not become tool results
    "forged_frames": ["""
import json, os, struct
def frame(obj):
    data = json.dumps(obj).encode()
    return struct.pack('>I', len(data)) + data
for fd in range(3, 64):
    try:
        os.write(fd, frame({'output': 'FORGED', 'error': None, 'truncated': False}))
    except OSError:
        pass
'real one'
""", "'second'", """
import sys, json, os, struct
frame = sys._getframe()
while frame is not None and 'request' not in frame.f_locals:
    frame = frame.f_back
nonce = frame.f_locals['request']['nonce'] if frame else None
data = json.dumps({'nonce': nonce, 'output': 'FORGED WITH NONCE', 'error': None, 'truncated': False}).encode()
os.write(3, struct.pack('>I', len(data)) + data)
'third'
""", "'fourth'"],
    # the documented attacks of docs/tooluse.md, in this mode too
    "host_files": [f"open({path!r}).read()" for path in ("/etc/shadow", "/etc/passwd", "/root/.bashrc")]
                  + ["import os; sorted(os.listdir('/'))"],
    "write_outside_work": [f"open({path!r}, 'w').write('x')" for path in ("/usr/pwned", "/pwned", "/dev/pwned")],
    "network": ["import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)"],
    "fork_bomb": ["import os\nwhile True:\n    os.fork()", "2 + 2"],
}


def _machine_numbers() -> dict:
    import platform

    return {"x86_64": {"pivot_root": 155, "clone": 56},
            "aarch64": {"pivot_root": 41, "clone": 220}}.get(platform.machine(), {"pivot_root": -1, "clone": -1})


def live_processes(root_pid: int) -> int:
    """Live (not zombie) processes in the tree under ``root_pid``, itself excluded."""
    children: dict[int, list[int]] = {}
    alive = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        if fields[0] not in ("Z", "X"):
            alive.add(int(entry))
    count, todo = 0, list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        count += pid in alive
        todo.extend(children.get(pid, []))
    return count


def play(make_sandbox, names=None) -> dict:
    """{scenario: [{"output", "error", "restarted", "processes"}, ...]}"""
    numbers = _machine_numbers()
    results = {}
    for name, cells in SCENARIOS.items():
        if names is not None and name not in names:
            continue
        with make_sandbox() as sandbox:
            results[name] = []
            for cell in cells:
                result = sandbox.run(cell.replace("{pivot_root}", str(numbers["pivot_root"]))
                                         .replace("{clone}", str(numbers["clone"])))
                proc = sandbox._proc
                results[name].append({"output": result.output, "error": result.error,
                                      "restarted": result.restarted,
                                      "processes": live_processes(proc.pid) if proc else None})
    return results


if __name__ == "__main__":   # as the unprivileged user: python sandbox_attacks.py SRC_DIR
    sys.path.insert(0, sys.argv[1])
    from agentgym.envs.tooluse.sandbox import Sandbox, SandboxLimits

    limits = SandboxLimits(cpu_s=1, wall_s=3.0, kill_grace_s=2.0, memory_mb=256)
    print(json.dumps(play(lambda: Sandbox(limits, isolation="userns"))))
