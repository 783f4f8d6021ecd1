"""A seccomp filter for the sandboxed interpreter, built from the standard library.

Denied with ``EPERM``: every system call that changes mounts or namespaces
(``mount``, ``umount2``, ``pivot_root``, ``chroot``, ``unshare``, ``setns``, the
new mount API, ``clone`` with a namespace flag), that inspects or writes other
processes (``ptrace``, ``process_vm_*``, ``pidfd_getfd``), loads code or state into
the kernel (modules, ``kexec``, ``bpf``, keyrings), or is a known kernel attack
surface no Python cell needs (``userfaultfd``, ``perf_event_open``, ``io_uring``,
file handles). ``clone3`` gets ``ENOSYS`` (its flags live in memory a filter cannot
read), so the C library falls back to ``clone``, whose flags it can. A call from any
other ABI than the host's (x32, 32-bit) kills the process: the numbers below would
not mean the same calls there.

Loaded by the launcher (``python -I -S``, standard library only), installed last
before the worker's ``execve``; the filter is inherited by every process the code
starts and cannot be removed.
"""

import ctypes
import errno
import platform
import struct

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
RET_ALLOW, RET_KILL_PROCESS, RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16    # struct seccomp_data (little endian)
X32_SYSCALL_BIT = 0x40000000

NAMESPACE_FLAGS = (0x00000080 | 0x00020000 | 0x02000000 | 0x04000000   # time, mount, cgroup, uts
                   | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000)  # ipc, user, pid, net

_COMMON = {  # the generic syscall table, shared by aarch64 and x86_64 for the newer calls
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "pidfd_getfd": 438, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427,
}
ARCHES = {
    "x86_64": (0xC000003E, 56, 435, dict(_COMMON, **{
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272,
        "setns": 308, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "bpf": 321, "keyctl": 250, "add_key": 248, "request_key": 249, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320,
        "swapon": 167, "swapoff": 168, "reboot": 169, "acct": 163, "quotactl": 179,
        "syslog": 103, "perf_event_open": 298, "userfaultfd": 323, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "lookup_dcookie": 212, "iopl": 172, "ioperm": 173,
    })),
    "aarch64": (0xC00000B7, 220, 435, dict(_COMMON, **{
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "unshare": 97,
        "setns": 268, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "bpf": 280, "keyctl": 219, "add_key": 217, "request_key": 218, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294,
        "swapon": 224, "swapoff": 225, "reboot": 142, "acct": 89, "quotactl": 60,
        "syslog": 116, "perf_event_open": 241, "userfaultfd": 282, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "lookup_dcookie": 18,
    })),
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str) -> bytes:
    """The BPF program for ``machine`` (``platform.machine()``), as raw sock_filter bytes."""
    if machine not in ARCHES:
        raise OSError(f"no seccomp filter for {machine}")
    arch, clone_nr, clone3_nr, denied = ARCHES[machine]
    deny = _op(RET_K, RET_ERRNO | errno.EPERM)
    ops = [_op(LD_W_ABS, OFFSET_ARCH), _op(JEQ_K, arch, 1, 0), _op(RET_K, RET_KILL_PROCESS),
           _op(LD_W_ABS, OFFSET_NR)]
    if machine == "x86_64":
        ops += [_op(JGE_K, X32_SYSCALL_BIT, 0, 1), _op(RET_K, RET_KILL_PROCESS)]
    for number in sorted(denied.values()):
        ops += [_op(JEQ_K, number, 0, 1), deny]
    ops += [_op(JEQ_K, clone3_nr, 0, 1), _op(RET_K, RET_ERRNO | errno.ENOSYS),
            _op(JEQ_K, clone_nr, 0, 3), _op(LD_W_ABS, OFFSET_ARG0),
            _op(JSET_K, NAMESPACE_FLAGS, 0, 1), deny, _op(RET_K, RET_ALLOW)]
    return b"".join(ops)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(libc) -> None:
    """Install the filter on this process (needs no_new_privs or CAP_SYS_ADMIN)."""
    code = program(platform.machine())
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = _SockFprog(len(code) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
