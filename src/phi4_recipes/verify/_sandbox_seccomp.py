"""The seccomp filter every sandboxed program runs under; ``_sandbox_init`` installs it just before exec.

Namespaces already cut the network, but a program can still reach the host through objects that
are not network interfaces: a Unix socket on a read-only but reachable path, the kernel keyrings
(shared by uid, so they outlive a run), or a nested namespace that sets up its own view. The
filter denies those system calls outright:

- ``socket`` for every address family (AF_UNIX included), and ``socketpair`` except for a
  connected AF_UNIX stream pair: it reaches nothing but its other end, and ``asyncio``'s
  self-pipe and ``multiprocessing.Pipe`` need it (a datagram pair could still ``sendto`` a bound
  path, so it stays denied); ``setsockopt``, whose only use on such a pair would be to grow its
  buffers up to ``net.core.wmem_max``: kernel memory that RLIMIT_AS does not see (120 pairs held
  941 MB in one process with a 4 MiB maximum; about 26 MB with the default buffers);
  ``io_uring_setup`` (io_uring can open sockets without ``socket``);
- ``unshare``, ``setns`` and ``clone`` with any ``CLONE_NEW*`` flag; ``clone3`` answers ENOSYS so
  libc falls back to ``clone``, whose flags a filter can read (clone3 passes them in memory);
- ``keyctl``, ``add_key`` and ``request_key``;
- ``flock``: every file in view outside the scratch tmpfs is shared with the host and with the
  other sandboxes, and a file opened read-only can still be locked: an exclusive lock on, say, the
  interpreter binary is a signal that the host and every other run can see (and a way to stall a
  host process that locks it). The call fails with EPERM rather than succeeding as a no-op: a
  program that locks to keep its own processes apart must not silently lose that exclusion.
  Record locks (``fcntl`` F_SETLK, which ``fcntl.lockf`` and sqlite3 take) stay allowed: the filter
  cannot tell a shared file from a scratch one, so a read lock on a shared file remains visible to
  ``F_GETLK`` elsewhere;
- where no cgroup caps the run's memory, also ``memfd_create``, ``memfd_secret`` and ``shmget``:
  their pages count against no process's address space, so RLIMIT_AS would not bound them (one
  run held 960 MiB of secret memory against ``memory_mb=512``; the tmpfs mounts the program can
  write are size-capped instead); and every new process (``fork``, ``vfork``, ``clone`` without
  ``CLONE_THREAD``): RLIMIT_AS caps each process, so six forks of 200 MB held 1.2 GB against
  ``memory_mb=512``, while threads share the one address space the limit covers.

Only x86_64 and aarch64 are known; a call made through another ABI (32-bit compat, x32) kills
the process, since the numbers above would not apply to it. Standard library only: this module
is imported by the init script, which runs with ``python -I -S``.
"""

import ctypes
import os
import struct

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_EPERM, _ENOSYS = 1, 38
# BPF opcodes: load a 32-bit word of seccomp_data, compare with a constant, mask, return.
_LOAD, _JEQ, _JGE, _JSET, _AND, _RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0_LOW, _OFFSET_ARG1_LOW = 0, 4, 16, 24  # little-endian on both arches
_X32_SYSCALL_BIT = 0x40000000
CLONE_THREAD = 0x00010000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
AF_UNIX, SOCK_STREAM, SOCK_TYPE_MASK = 1, 1, 0xF  # the type argument also carries SOCK_CLOEXEC | SOCK_NONBLOCK

# machine -> (AUDIT_ARCH_*, system call numbers)
ARCHES = {
    "x86_64": (0xC000003E, {"socket": 41, "socketpair": 53, "clone": 56, "unshare": 272, "setns": 308,
                            "clone3": 435, "keyctl": 250, "add_key": 248, "request_key": 249,
                            "io_uring_setup": 425, "memfd_create": 319, "shmget": 29, "setsockopt": 54,
                            "pivot_root": 155, "fork": 57, "vfork": 58, "flock": 73, "memfd_secret": 447}),
    "aarch64": (0xC00000B7, {"socket": 198, "socketpair": 199, "clone": 220, "unshare": 97, "setns": 268,
                             "clone3": 435, "keyctl": 219, "add_key": 217, "request_key": 218,
                             "io_uring_setup": 425, "memfd_create": 279, "shmget": 194, "setsockopt": 208,
                             "pivot_root": 41, "flock": 32, "memfd_secret": 447}),
}  # fmt: skip
# aarch64 has no fork/vfork system calls (libc forks through clone), so only x86_64 names them.
NEW_PROCESS_ONLY_CALLS = ("fork", "vfork")
DENIED = ("socket", "setsockopt", "unshare", "setns", "keyctl", "add_key", "request_key", "io_uring_setup",
          "flock")  # fmt: skip
# Memory that RLIMIT_AS does not see; denied only where no cgroup charges it to the run.
DENIED_WITHOUT_CGROUP = ("memfd_create", "memfd_secret", "shmget")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def build_filter(machine: str, memory_capped: bool = True) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jump-if-true, jump-if-false, constant) instructions for ``machine``.

    Args:
        machine (str): ``os.uname().machine``.
        memory_capped (bool): a cgroup caps the run's total memory; if False, ``DENIED_WITHOUT_CGROUP``
            and every new process are denied too (threads stay allowed).

    Raises:
        KeyError: an architecture this filter has no system call numbers for.
    """
    audit_arch, numbers = ARCHES[machine]
    denied = DENIED if memory_capped else DENIED + DENIED_WITHOUT_CGROUP
    if not memory_capped:
        denied += tuple(name for name in NEW_PROCESS_ONLY_CALLS if name in numbers)
    # Symbolic jump targets, resolved once the layout is known.
    program: list[tuple] = [(_LOAD, 0, 0, _OFFSET_ARCH), (_JEQ, None, "kill", audit_arch), (_LOAD, 0, 0, _OFFSET_NR)]
    if machine == "x86_64":
        program.append((_JGE, "kill", None, _X32_SYSCALL_BIT))
    program += [(_JEQ, "eperm", None, numbers[name]) for name in denied]
    program += [
        (_JEQ, "enosys", None, numbers["clone3"]),
        (_JEQ, "socketpair", None, numbers["socketpair"]),
        (_JEQ, "clone", "allow", numbers["clone"]),
    ]
    labels = {"clone": len(program)}
    program += [(_LOAD, 0, 0, _OFFSET_ARG0_LOW), (_JSET, "eperm", "allow" if memory_capped else None, CLONE_NEW_FLAGS)]
    if not memory_capped:
        program.append((_JSET, "allow", "eperm", CLONE_THREAD))
    labels["socketpair"] = len(program)
    program += [
        (_LOAD, 0, 0, _OFFSET_ARG0_LOW),
        (_JEQ, None, "eperm", AF_UNIX),
        (_LOAD, 0, 0, _OFFSET_ARG1_LOW),
        (_AND, 0, 0, SOCK_TYPE_MASK),
        (_JEQ, "allow", "eperm", SOCK_STREAM),
    ]
    for label, value in (("allow", _RET_ALLOW), ("eperm", _RET_ERRNO | _EPERM), ("enosys", _RET_ERRNO | _ENOSYS),
                         ("kill", _RET_KILL_PROCESS)):  # fmt: skip
        labels[label] = len(program)
        program.append((_RET, 0, 0, value))

    def offset(index: int, target) -> int:
        return 0 if target is None or isinstance(target, int) else labels[target] - index - 1

    return [(code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(program)]


def install(libc: ctypes.CDLL, memory_capped: bool = True) -> None:
    """Install the filter on the calling thread (``no_new_privs`` must already be set); it passes to children.

    Raises:
        OSError: the kernel refused the filter, or the architecture is unknown.
    """
    machine = os.uname().machine
    if machine not in ARCHES:
        raise OSError(f"no seccomp filter for architecture {machine!r}; refusing to run unfiltered")
    instructions = build_filter(machine, memory_capped)
    packed = b"".join(struct.pack("=HBBI", *instruction) for instruction in instructions)
    program = _SockFprog(len(instructions), packed)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_SECCOMP): {os.strerror(errno)}")
