"""Init process of one sandbox run; ``sandbox.py`` starts it with ``python -I -S`` inside ``unshare``.

It runs as pid 1 of fresh network/mount/pid/ipc/uts namespaces (mode "root" or "userns") or,
when the caller opted out of isolation, in the host namespaces (mode "none"). It:

1. reads its settings from argv[1] (JSON) and the program from the inherited fd they name;
2. joins the per-run cgroup(s) when the caller made them (memory and process limits for the whole run);
3. builds the program's whole filesystem on a fresh tmpfs and makes it the root (``pivot_root``),
   so nothing of the host is in view unless listed (see ``sandbox._view``): read-only binds of
   the system directories, the interpreter's install and a few /etc files; empty read-only tmpfs
   over the package folders inside them, holding binds of only the allowed packages; five device
   nodes; private size-capped tmpfs on /tmp and /dev/shm; a fresh /proc that only shows the
   sandbox's own processes. Everything but /tmp, /dev/shm and /proc is then read-only;
4. forks the program with rlimits, no capabilities, ``no_new_privs``, a fresh session keyring, the
   seccomp filter of ``_sandbox_seccomp`` and (as host root) a per-run unprivileged uid, so
   RLIMIT_NPROC really applies and counts only this run;
5. reaps every process until the program exits, then writes its status as JSON to the status fd.
   Returning from pid 1 makes the kernel kill whatever the program left behind.

Setup failures are reported on the status fd as ``{"setup_error": ...}`` so the caller can refuse to run.
"""

import ctypes
import json
import os
import resource
import signal
import sys

# The init script runs with -I -S, so its own folder is not on the path; the filter lives beside it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _sandbox_seccomp  # noqa: E402

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 0x20, 0x400, 0x800, 0x1000, 0x4000
MS_RELATIME = 0x200000
MNT_DETACH = 2
_MOUNT_OPTION_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
# Kernel-interface filesystems the sandbox uid cannot write anyway; some refuse a read-only remount.
_PSEUDO_FILESYSTEMS = {
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue", "securityfs", "debugfs", "tracefs",
    "bpf", "pstore", "fusectl", "configfs", "binfmt_misc", "hugetlbfs", "autofs", "nsfs", "efivarfs",
}  # fmt: skip
# Where the program may write (each a private tmpfs), and /proc, which the kernel guards itself.
WRITABLE = ("/tmp", "/dev/shm", "/proc")
DEVICES = ("null", "zero", "full", "random", "urandom")
# Where the new root is assembled before pivot_root; any directory works in a private mount namespace.
_STAGING = "/tmp"
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 38, 24, 28
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: exec as uid 0 (in a user namespace) grants no capabilities.
SECURE_NOROOT_LOCKED = 0x1 | 0x2
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SYSCALL = {machine: numbers["keyctl"] for machine, (_, numbers) in _sandbox_seccomp.ARCHES.items()}
PIVOT_ROOT_SYSCALL = {machine: numbers["pivot_root"] for machine, (_, numbers) in _sandbox_seccomp.ARCHES.items()}
# Per-run uids start here; far above any uid a distribution or container image hands out.
SANDBOX_UID_BASE = 2_000_000

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """The sandbox could not be put in place; nothing of the program has run."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)} (errno {errno})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    encode = lambda value: None if value is None else value.encode()  # noqa: E731
    result = _libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data))
    _check(result, f"mount {fstype or 'remount'} on {target}")


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    return path.encode().decode("unicode_escape").encode("latin-1").decode()


def make_mounts_read_only(keep_writable: tuple[str, ...] = ()) -> None:
    """Remount every mount in view read-only (only inside this private mount namespace), but ``keep_writable``.

    The options a mount already has are kept: a user namespace may not drop flags (nosuid, nodev,
    noexec, atime) that its parent's mounts carry, and refuses the remount otherwise.
    """
    with open("/proc/self/mountinfo") as handle:
        entries = [line.split() for line in handle]
    for fields in entries:
        mount_point = _unescape(fields[4])
        separator = fields.index("-")
        fstype = fields[separator + 1]
        options = fields[5].split(",")
        if "ro" in options or mount_point in keep_writable:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= _MOUNT_OPTION_FLAGS.get(option, 0)
        try:
            _mount(None, mount_point, None, flags, None)
        except SetupError:
            if fstype not in _PSEUDO_FILESYSTEMS:
                raise


def _make_mount_point(path: str, directory: bool) -> None:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if directory:
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif not os.path.exists(path):
        open(path, "w").close()


def _bind(fd: int, target: str) -> None:
    # From /proc/self/fd/N: the source may sit under the staging directory that now covers it.
    source = f"/proc/self/fd/{fd}"
    _make_mount_point(target, os.path.isdir(source))
    # MS_REC: a user namespace refuses to bind a mount without the mounts locked beneath it.
    _mount(source, target, None, MS_BIND | MS_REC, None)


def _tmpfs(target: str, size: str, mode: str) -> None:
    _make_mount_point(target, directory=True)
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}")


def build_root(view: dict, scratch_mb: int) -> str:
    """Assemble the program's filesystem under a fresh tmpfs and return where it is; the host stays as it was.

    ``view`` (from ``sandbox._view``): ``binds`` [[host path, path inside]] bound read-only,
    ``symlinks`` [[path, target]], ``hidden`` [paths inside] each covered by an empty tmpfs, and
    ``packages`` [[host path, path inside]] bound into those covers afterwards.
    """
    # Opened before anything is covered: afterwards the paths may be gone from view.
    sources = {source: os.open(source, os.O_PATH) for source, _ in view["binds"] + view["packages"]}
    sources.update({f"/dev/{name}": os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES})
    try:
        root = _STAGING
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        # Scratch first: an interpreter installed under /tmp is then bound inside it, not covered by it.
        for scratch in ("/tmp", "/dev/shm"):
            _tmpfs(root + scratch, f"{scratch_mb}m", "1777")
        for source, target in view["binds"]:
            _bind(sources[source], root + target)
        for hidden in view["hidden"]:
            # Binds stay writable until enter_root: never create a folder through one onto the host.
            if os.path.isdir(root + hidden):
                _mount("tmpfs", root + hidden, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755")
        for source, target in view["packages"]:
            _bind(sources[source], root + target)
        for name in DEVICES:
            _bind(sources[f"/dev/{name}"], f"{root}/dev/{name}")
    finally:
        for fd in sources.values():
            os.close(fd)
    for path, target in view["symlinks"] + [[f"/dev/{name}", f"/proc/self/fd/{fd}"]
                                            for fd, name in enumerate(("stdin", "stdout", "stderr"))]:  # fmt: skip
        os.makedirs(os.path.dirname(root + path), mode=0o755, exist_ok=True)
        os.symlink(target, root + path)
    os.symlink("/proc/self/fd", f"{root}/dev/fd")
    os.makedirs(f"{root}/var", mode=0o755, exist_ok=True)
    os.symlink("/tmp", f"{root}/var/tmp")
    # Mounted while the host's /proc is still in view: a user namespace may mount proc only then.
    _make_mount_point(f"{root}/proc", directory=True)
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    return root


def enter_root(root: str) -> None:
    """Make ``root`` the filesystem root, drop every host mount from this namespace, and seal it read-only."""
    number = PIVOT_ROOT_SYSCALL.get(os.uname().machine)
    if number is None:
        raise SetupError(f"no pivot_root system call number for architecture {os.uname().machine!r}")
    os.chdir(root)
    # The old root is stacked on the new one at "."; detaching it takes every host mount out of view.
    _check(_libc.syscall(number, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount the host root")
    os.chdir("/")
    make_mounts_read_only(keep_writable=WRITABLE)


def join_cgroups(cgroups: list[str]) -> None:
    """Move this process (and so everything it forks) into the per-run cgroup(s) the caller made."""
    for cgroup in cgroups:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as handle:
            handle.write("0")


def join_fresh_session_keyring() -> None:
    """Replace the inherited session keyring by a new empty one, so the caller's keys are not possessed."""
    number = KEYCTL_SYSCALL.get(os.uname().machine)
    if number is None:
        return
    if _libc.syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:
        errno = ctypes.get_errno()
        if errno != 38:  # ENOSYS: a kernel without keyrings has none to leak
            raise SetupError(f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(errno)} (errno {errno})")


def host_pid() -> int:
    """This process's pid in the host pid namespace (unique among live processes), read before /proc is replaced."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("NSpid:"):
                return int(line.split()[1])
    return os.getpid()


def drop_privileges(config: dict, uid: int | None) -> None:
    """In the forked child: rlimits, then no capabilities and no way to regain them, then the seccomp filter."""
    limits = {
        resource.RLIMIT_CPU: config["cpu_seconds"],
        resource.RLIMIT_AS: config["memory_mb"] * 2**20,
        resource.RLIMIT_NPROC: config["max_processes"],
        resource.RLIMIT_FSIZE: config["file_size_mb"] * 2**20,
        resource.RLIMIT_NOFILE: config["max_open_files"],
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        # Soft limit first so RLIMIT_CPU sends SIGXCPU (reported as a time-out) before the hard SIGKILL.
        hard = value + 1 if kind == resource.RLIMIT_CPU else value
        resource.setrlimit(kind, (value, hard))
    if config["cgroups"]:
        # When the run's cgroup runs out of memory, the kernel kills the program's processes, not this init.
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    if config["mode"] != "none":
        for capability in range(64):
            if _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
                break  # past the last capability this kernel knows
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # leaving uid 0 clears every capability
    elif config["mode"] == "userns":
        _check(_libc.prctl(PR_SET_SECUREBITS, SECURE_NOROOT_LOCKED, 0, 0, 0), "prctl(SET_SECUREBITS)")
    join_fresh_session_keyring()
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    _sandbox_seccomp.install(_libc, memory_capped=bool(config["cgroups"]))


def reap_until(child: int) -> int:
    """Reap every process handed to us until ``child`` exits; return its raw wait status."""
    while True:
        pid, status = os.wait()
        if pid == child:
            return status


def main() -> None:
    config = json.loads(sys.argv[1])
    status_pipe = os.fdopen(config["status_fd"], "w")
    with os.fdopen(config["program_fd"], "rb") as program_file:
        program = program_file.read()
    try:
        mode = config["mode"]
        if mode not in ("root", "userns", "none"):
            raise SetupError(f"unknown sandbox mode {mode!r}")
        join_cgroups(config["cgroups"])
        uid = SANDBOX_UID_BASE + host_pid() if mode == "root" else None
        workdir = config["workdir"]
        if mode != "none":
            os.umask(0o022)
            enter_root(build_root(config["view"], config["scratch_mb"]))
            os.makedirs(workdir, mode=0o700)
        program_path = os.path.join(workdir, "main.py")
        with open(program_path, "wb") as handle:
            handle.write(program)
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(program_path, uid, uid)
    except (SetupError, OSError) as error:
        status_pipe.write(json.dumps({"setup_error": str(error)}))
        sys.exit(1)

    child = os.fork()
    if child == 0:
        try:
            status_pipe.close()
            drop_privileges(config, uid)
            os.chdir(workdir)
            os.execve(config["python"], [config["python"], "-I", program_path], config["env"])
        except BaseException as error:  # noqa: BLE001 - report anything, then die without running cleanup twice
            os.write(2, f"sandbox: could not start the program: {error}\n".encode())
        os._exit(127)

    # Backstop in case the parent dies: pid 1 ignores default-action signals, so install a handler.
    signal.signal(signal.SIGALRM, lambda *_: os.kill(child, signal.SIGKILL))
    signal.alarm(int(config["wall_seconds"]) + 2)
    status = reap_until(child)
    if os.WIFSIGNALED(status):
        report = {"exit_code": -os.WTERMSIG(status)}
    else:
        report = {"exit_code": os.WEXITSTATUS(status)}
    status_pipe.write(json.dumps(report))
    status_pipe.close()


if __name__ == "__main__":
    main()
