"""Runs as PID 1 of a fresh pid/mount/net/ipc/uts namespace (started by ``unshare``).

Builds the sandbox's whole filesystem, starts the worker in it, and then sits between
the host and the worker for the sandbox's life:

1. a private mount tree; a small tmpfs becomes the new root; a private ``proc`` of
   the new pid namespace is mounted, opened and detached again, so this process can
   list the namespace's processes through the fd while no path to it exists;
2. read-only bind mounts of the directories the interpreter needs (``/usr``, the
   Python installation, ...), the ``/dev`` nodes ``null``/``zero``/``urandom``, a
   size-limited tmpfs at ``/work`` (the throw-away working directory) and the worker
   scripts copied in;
3. the new root is remounted read-only, ``pivot_root`` moves into it and the old root
   is detached, so no host path exists in this mount namespace any more;
4. a child gives up every privilege before it runs anything the agent wrote: the
   capability bounding and ambient sets are emptied and ``SECBIT_NOROOT`` locked (so
   even the user namespace's uid 0 gains nothing at ``execve``), it drops to the
   unprivileged uid/gid it is given (in ``root`` mode), clears its capabilities, sets
   ``no_new_privs``, the resource limits and a seccomp filter (``_seccomp.py``), and
   execs the worker. All mounts belong to this process's namespaces; the worker holds
   no capability over them and cannot make new namespaces;
5. this process then relays each request from the host (fd 0) to the worker, waits
   for the worker's reply carrying that request's random nonce (a stale or forged
   reply is dropped, a garbled one ends the sandbox), kills every other process in
   the namespace, and only then answers the host (fd 1). The worker never holds the
   host's pipes, so nothing the code writes reaches the host unframed.

When this process exits the kernel kills every process left in the namespace.
Standard library only: it runs under ``python -I -S`` before any project code exists
in the namespace. The one argument is a JSON object (see ``sandbox.py``).
"""

import ctypes
import json
import os
import platform
import resource
import select
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # -I leaves it out
import _frames   # noqa: E402
import _seccomp  # noqa: E402

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 28, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT + its lock, KEEP_CAPS locked off, NO_CAP_AMBIENT_RAISE + its lock
LOCKED_SECUREBITS = 0x01 | 0x02 | 0x20 | 0x40 | 0x80
CAP_VERSION_3 = 0x20080522
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
EXIT_SETUP, EXIT_PROTOCOL, EXIT_CLEANUP = 70, 71, 72

libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> None:
    err = ctypes.get_errno()
    sys.stderr.write(f"sandbox setup failed: {what}: {os.strerror(err)}\n")
    os._exit(EXIT_SETUP)


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


def private_proc(new_root: str) -> int:
    """A directory fd on a proc of this pid namespace that no path leads to."""
    where = new_root + "/.proc"
    os.mkdir(where)
    mount("proc", where, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if libc.umount2(where.encode(), MNT_DETACH) != 0:
        _fail("detach the private proc")
    os.rmdir(where)
    return fd


def build_root(cfg: dict, sources: dict) -> tuple[str, int]:
    new_root = cfg["mountpoint"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")
    proc_fd = private_proc(new_root)
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
    for name, text in sources.items():
        with open(f"{new_root}/{name}", "w") as f:
            f.write(text)
    mount(None, new_root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return new_root, proc_fd


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


def drop_privileges(uid) -> None:
    """Leave this process no capability in any namespace, now or after execve."""
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        _fail("clear the ambient capabilities")
    cap = 0
    while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    if cap == 0:
        _fail("empty the capability bounding set")
    if libc.prctl(PR_SET_SECUREBITS, LOCKED_SECUREBITS, 0, 0, 0) != 0:
        _fail("lock the securebits")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
    if libc.capset(header, (ctypes.c_uint32 * 6)()) != 0:
        _fail("clear the capabilities")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _fail("no_new_privs")


def start_worker(cfg: dict) -> tuple[int, int, int]:
    """Fork and exec the worker; (pid, fd to send it requests, fd its replies come on)."""
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(requests_r)
        os.close(replies_w)
        return pid, requests_w, replies_r
    try:
        devnull = os.open("/dev/null", os.O_RDWR)
        # fd 0: requests, 1 and 2: /dev/null, 3: replies; nothing else (the host's pipes
        # and the private proc stay with the launcher)
        keep = [os.dup(fd) for fd in (requests_r, devnull, devnull, replies_w)]
        for target, fd in enumerate(keep):
            os.dup2(fd, target)
        os.closerange(4, 1 << 16)
        drop_privileges(cfg["uid"])
        for name, value in cfg["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        os.chdir("/work")
        env = {"PATH": "/usr/bin:/bin", "HOME": "/work", "LANG": "C.UTF-8",
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/work"}
        _seccomp.install(libc)
        os.execve(cfg["python"], [cfg["python"], "-S", "-s", "-B", "/worker.py"], env)
    except BaseException as e:  # noqa: BLE001 - report anything, never return to the caller
        sys.stderr.write(f"sandbox setup failed: {type(e).__name__}: {e}\n")
        os._exit(EXIT_SETUP)


class Relay:
    """The host's side of the worker: requests in, one checked reply out per request."""

    def __init__(self, worker: int, to_worker: int, from_worker: int, proc_fd: int,
                 max_reply: int):
        self.worker, self.to_worker, self.from_worker = worker, to_worker, from_worker
        self.proc_fd, self.max_reply = proc_fd, max_reply
        self.worker_pidfd = os.pidfd_open(worker)
        self.worker_status = None

    def serve(self) -> None:
        if self.await_reply(lambda frame: frame.get("ready") is True) is None:
            self.finish()
        _frames.write_frame(1, {"ready": True})
        while True:
            request = _frames.read_frame(0)
            if request is None:          # the host closed the sandbox
                os._exit(0)
            nonce = os.urandom(16).hex()
            try:
                _frames.write_frame(self.to_worker, dict(request, nonce=nonce))
            except OSError:
                self.finish()
            reply = self.await_reply(lambda frame: frame.get("nonce") == nonce)
            if reply is None:
                self.finish()
            self.kill_the_rest()
            _frames.write_frame(1, {"output": str(reply.get("output", "")),
                                    "error": None if reply.get("error") is None else str(reply["error"]),
                                    "truncated": bool(reply.get("truncated"))})

    def await_reply(self, wanted):
        """The first frame ``wanted`` accepts (others are dropped), or None if the worker
        died first; a garbled frame ends the sandbox."""
        while True:
            ready = select.select([self.from_worker, self.worker_pidfd], [], [])[0]
            if self.from_worker not in ready:
                return None
            try:
                frame = _frames.read_frame(self.from_worker, self.max_reply)
            except _frames.FrameError:
                os._exit(EXIT_PROTOCOL)
            if frame is None:
                return None
            if wanted(frame):
                return frame

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.worker:
                self.worker_status = status

    def others(self) -> list[int]:
        """Live processes in the namespace other than this one and the worker."""
        pids = []
        for entry in os.listdir(self.proc_fd):
            if not entry.isdigit() or int(entry) in (1, self.worker):
                continue
            try:
                fd = os.open(f"{entry}/stat", os.O_RDONLY, dir_fd=self.proc_fd)
                try:
                    stat = os.read(fd, 512)
                finally:
                    os.close(fd)
            except OSError:
                continue
            if stat[stat.rfind(b")") + 2:][:1] not in (b"Z", b"X"):
                pids.append(int(entry))
        return pids

    def kill_the_rest(self) -> None:
        """SIGKILL everything the cell started, outside the code's reach; a namespace that
        cannot be emptied within 2 s (a fork race that keeps winning) is ended whole."""
        deadline = time.monotonic() + 2.0
        while True:
            self.reap()
            others = self.others()
            if not others:
                return
            for pid in others:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                os._exit(EXIT_CLEANUP)
            select.select([], [], [], 0.001)    # let the kernel finish the kills

    def finish(self) -> None:
        """The worker is gone (or going): exit with its status; the namespace dies with us."""
        if self.worker_status is None:
            try:
                os.kill(self.worker, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while self.worker_status is None:
                pid, status = os.waitpid(-1, 0)
                if pid == self.worker:
                    self.worker_status = status
        code = os.waitstatus_to_exitcode(self.worker_status)
        os._exit(128 - code if code < 0 else code)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    here = os.path.dirname(os.path.abspath(__file__))
    sources = {}
    for name, path in (("worker.py", "_worker.py"), ("_frames.py", "_frames.py")):
        with open(os.path.join(here, path)) as f:
            sources[name] = f.read()
    new_root, proc_fd = build_root(cfg, sources)
    enter_root(new_root)
    worker, to_worker, from_worker = start_worker(cfg)
    Relay(worker, to_worker, from_worker, proc_fd, cfg["max_reply"]).serve()


if __name__ == "__main__":
    main()
