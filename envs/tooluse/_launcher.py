"""Runs as PID 1 of a fresh pid/mount/net/ipc/uts namespace (started by ``unshare``).

Builds the sandbox's whole filesystem and starts the worker in it:

1. a private mount tree; a small tmpfs becomes the new root;
2. read-only bind mounts of the directories the interpreter needs (``/usr``, the
   Python installation, ...), the ``/dev`` nodes ``null``/``zero``/``urandom``, a
   size-limited tmpfs at ``/work`` (the throw-away working directory) and the worker
   script copied in;
3. the new root is remounted read-only, ``pivot_root`` moves into it and the old root
   is detached, so no host path exists in this mount namespace any more;
4. a child drops to the unprivileged uid/gid it is given (when the namespace's root is
   real root), sets
   no-new-privs and the resource limits, and execs the worker; this process stays as
   PID 1 only to reap orphans, and exits with the worker's status. When PID 1 exits the
   kernel kills every process left in the namespace.

Standard library only: it runs under ``python -I -S`` before any project code exists
in the namespace. The one argument is a JSON object (see ``sandbox.py``).
"""

import ctypes
import json
import os
import platform
import resource
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> None:
    err = ctypes.get_errno()
    sys.stderr.write(f"sandbox setup failed: {what}: {os.strerror(err)}\n")
    os._exit(70)


def mount(source, target, fstype, flags, data=None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)
    if libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        _fail(f"mount {source} on {target}")


def bind_readonly(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    mount(source, target, None, MS_BIND)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def build_root(cfg: dict, worker_source: str) -> str:
    new_root = cfg["mountpoint"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    for path in cfg["readonly"]:
        if not os.path.lexists(path):
            continue
        target = new_root + path
        if os.path.islink(path) and os.path.dirname(path) == "/":
            os.symlink(os.readlink(path), target)          # /lib -> usr/lib and the like
        else:
            bind_readonly(os.path.realpath(path), target)
    os.makedirs(new_root + "/dev")
    for node in ("null", "zero", "urandom", "random"):
        target = new_root + "/dev/" + node
        open(target, "w").close()
        mount("/dev/" + node, target, None, MS_BIND)
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
    os.makedirs(new_root + "/work")
    mount("tmpfs", new_root + "/work", "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={cfg['workdir_bytes']},mode=0777")
    with open(new_root + "/worker.py", "w") as f:
        f.write(worker_source)
    mount(None, new_root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return new_root


def enter_root(new_root: str) -> None:
    os.chdir(new_root)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        _fail(f"pivot_root on {platform.machine()}")
    if libc.syscall(number, b".", b".") != 0:     # old root ends up stacked under "."
        _fail("pivot_root")
    if libc.umount2(b".", MNT_DETACH) != 0:
        _fail("detach the old root")
    os.chdir("/")


def start_worker(cfg: dict) -> int:
    pid = os.fork()
    if pid:
        return pid
    try:
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["uid"])
            os.setuid(cfg["uid"])
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            _fail("no_new_privs")
        limits = cfg["rlimits"]
        for name, value in limits.items():
            resource.setrlimit(getattr(resource, name), (value, value))
        os.chdir("/work")
        env = {"PATH": "/usr/bin:/bin", "HOME": "/work", "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/work"}
        os.execve(cfg["python"], [cfg["python"], "-S", "-s", "-B", "/worker.py"], env)
    except BaseException as e:  # noqa: BLE001 - report anything, never return to the caller
        sys.stderr.write(f"sandbox setup failed: {type(e).__name__}: {e}\n")
        os._exit(70)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    with open(cfg["worker"]) as f:
        worker_source = f.read()
    enter_root(build_root(cfg, worker_source))
    worker = start_worker(cfg)
    while True:   # PID 1 reaps every orphan until the worker itself exits
        pid, status = os.wait()
        if pid == worker:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
