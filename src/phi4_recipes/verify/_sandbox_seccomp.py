"""The seccomp filter every sandboxed program runs under; ``_sandbox_init`` installs it just before exec.

Namespaces already cut the network, but a program can still reach the host through objects that
are not network interfaces: a Unix socket on a read-only but reachable path, the kernel keyrings
(shared by uid, so they outlive a run), or a nested namespace that sets up its own view. The
filter denies those system calls outright:

- ``socket`` and ``socketpair`` for every address family (AF_UNIX included), and ``io_uring_setup``
  (io_uring can open sockets without calling ``socket``);
- ``unshare``, ``setns`` and ``clone`` with any ``CLONE_NEW*`` flag; ``clone3`` answers ENOSYS so
  libc falls back to ``clone``, whose flags a filter can read (clone3 passes them in memory);
- ``keyctl``, ``add_key`` and ``request_key``.

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
# BPF opcodes: load a 32-bit word of seccomp_data, compare with a constant, return.
_LOAD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0_LOW = 0, 4, 16  # little-endian on both arches
_X32_SYSCALL_BIT = 0x40000000
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80

# machine -> (AUDIT_ARCH_*, system call numbers)
ARCHES = {
    "x86_64": (0xC000003E, {"socket": 41, "socketpair": 53, "clone": 56, "unshare": 272, "setns": 308,
                            "clone3": 435, "keyctl": 250, "add_key": 248, "request_key": 249,
                            "io_uring_setup": 425}),
    "aarch64": (0xC00000B7, {"socket": 198, "socketpair": 199, "clone": 220, "unshare": 97, "setns": 268,
                             "clone3": 435, "keyctl": 219, "add_key": 217, "request_key": 218,
                             "io_uring_setup": 425}),
}  # fmt: skip
DENIED = ("socket", "socketpair", "unshare", "setns", "keyctl", "add_key", "request_key", "io_uring_setup")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def build_filter(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jump-if-true, jump-if-false, constant) instructions for ``machine``.

    Raises:
        KeyError: an architecture this filter has no system call numbers for.
    """
    audit_arch, numbers = ARCHES[machine]
    # Symbolic jump targets, resolved once the layout is known.
    program: list[tuple] = [(_LOAD, 0, 0, _OFFSET_ARCH), (_JEQ, None, "kill", audit_arch), (_LOAD, 0, 0, _OFFSET_NR)]
    if machine == "x86_64":
        program.append((_JGE, "kill", None, _X32_SYSCALL_BIT))
    program += [(_JEQ, "eperm", None, numbers[name]) for name in DENIED]
    program += [
        (_JEQ, "enosys", None, numbers["clone3"]),
        (_JEQ, "clone", "allow", numbers["clone"]),
    ]
    labels = {"clone": len(program)}
    program += [(_LOAD, 0, 0, _OFFSET_ARG0_LOW), (_JSET, "eperm", "allow", CLONE_NEW_FLAGS)]
    for label, value in (("allow", _RET_ALLOW), ("eperm", _RET_ERRNO | _EPERM), ("enosys", _RET_ERRNO | _ENOSYS),
                         ("kill", _RET_KILL_PROCESS)):  # fmt: skip
        labels[label] = len(program)
        program.append((_RET, 0, 0, value))

    def offset(index: int, target) -> int:
        return 0 if target is None or isinstance(target, int) else labels[target] - index - 1

    return [(code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(program)]


def install(libc: ctypes.CDLL) -> None:
    """Install the filter on the calling thread (``no_new_privs`` must already be set); it passes to children.

    Raises:
        OSError: the kernel refused the filter, or the architecture is unknown.
    """
    machine = os.uname().machine
    if machine not in ARCHES:
        raise OSError(f"no seccomp filter for architecture {machine!r}; refusing to run unfiltered")
    instructions = build_filter(machine)
    packed = b"".join(struct.pack("=HBBI", *instruction) for instruction in instructions)
    program = _SockFprog(len(instructions), packed)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_SECCOMP): {os.strerror(errno)}")
