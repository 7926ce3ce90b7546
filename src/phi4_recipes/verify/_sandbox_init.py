"""Init process of one sandbox run; ``sandbox.py`` starts it with ``python -I -S`` inside ``unshare``.

It runs as pid 1 of fresh network/mount/pid/ipc/uts namespaces (mode "root" or "userns") or,
when the caller opted out of isolation, in the host namespaces (mode "none"). It:

1. reads its settings from argv[1] (JSON) and the program from the inherited fd they name;
2. joins the per-run cgroup when the caller made one (memory and process limits for the whole run);
3. makes every existing mount read-only, puts small private tmpfs mounts on the world-writable
   directories, binds the interpreter back read-only where those (or a private home) hid it, and
   mounts a fresh /proc that only shows the sandbox's own processes;
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
_STATVFS_TO_MOUNT_FLAGS = {
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
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
_WRITABLE_SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 38, 24, 28
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: exec as uid 0 (in a user namespace) grants no capabilities.
SECURE_NOROOT_LOCKED = 0x1 | 0x2
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SYSCALL = {machine: numbers["keyctl"] for machine, (_, numbers) in _sandbox_seccomp.ARCHES.items()}
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


def make_mounts_read_only() -> None:
    """Remount every mount read-only (only inside this private mount namespace)."""
    with open("/proc/self/mountinfo") as handle:
        entries = [line.split() for line in handle]
    for fields in entries:
        mount_point = _unescape(fields[4])
        separator = fields.index("-")
        fstype = fields[separator + 1]
        options = fields[5].split(",")
        if "ro" in options:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= _MOUNT_OPTION_FLAGS.get(option, 0)
        try:
            _mount(None, mount_point, None, flags, None)
        except SetupError:
            if fstype not in _PSEUDO_FILESYSTEMS:
                raise


def scratch_dirs() -> list[str]:
    """The world-writable directories that get a private tmpfs (a symlink follows its target)."""
    return [d for d in _WRITABLE_SCRATCH_DIRS if os.path.isdir(d) and not os.path.islink(d)]


def mount_private_scratch(scratch: list[str], scratch_mb: int) -> None:
    """Hide the host's world-writable directories behind small private tmpfs mounts."""
    for directory in scratch:
        _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, f"size={scratch_mb}m,mode=1777")


def _mount_read_only(target: str) -> None:
    # A bind mount or a new tmpfs starts writable even when its source is read-only. Flags the kernel
    # may have locked (noexec, atime, in a user namespace) are kept, or the remount is refused.
    kept = os.statvfs(target).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    for statvfs_flag, mount_flag in _STATVFS_TO_MOUNT_FLAGS.items():
        if kept & statvfs_flag:
            flags |= mount_flag
    _mount(None, target, None, flags, None)


def plan_exposure(paths: list[str], scratch: list[str], hide_untraversable: bool) -> dict[str, list[str]]:
    """Group the paths the program needs by the directory that will hide them; call before hiding anything.

    A path is hidden by its topmost ancestor that becomes a private tmpfs (a scratch directory such as
    /tmp, where venvs often live) or, when the program runs as another uid, that the uid cannot
    traverse (mode without o+x, such as /root holding a pyenv build). Paths that nothing hides, or
    that sit inside another listed path, need no mount.

    Returns:
        dict[str, list[str]]: hiding directory -> paths under it to bind back.
    """
    paths = sorted(set(paths))
    kept = [p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)]
    if hide_untraversable:
        # A listed directory the program's uid cannot enter itself (a venv made by `mktemp -d`, mode 0700) is
        # rebuilt as a traversable directory holding binds of its entries.
        kept = [entry for path in kept for entry in (
            [os.path.join(path, name) for name in sorted(os.listdir(path))]
            if os.path.isdir(path) and os.stat(path).st_mode & 0o001 == 0 else [path])]
    plan: dict[str, list[str]] = {}
    for path in kept:
        parts = [part for part in path.split("/") if part]
        for depth in range(1, len(parts)):
            ancestor = "/" + "/".join(parts[:depth])
            untraversable = hide_untraversable and os.stat(ancestor).st_mode & 0o001 == 0
            if ancestor in scratch or untraversable:
                plan.setdefault(ancestor, []).append(path)
                break
    return plan


def open_exposed(plan: dict[str, list[str]]) -> dict[str, int]:
    """O_PATH descriptors of the paths to bind back: they stay usable after their parents are hidden."""
    return {path: os.open(path, os.O_PATH) for paths in plan.values() for path in paths}


def bind_exposed(plan: dict[str, list[str]], fds: dict[str, int], scratch: list[str]) -> None:
    """Bind each planned path, read-only, back at its own path inside the tmpfs that now hides it.

    A hiding directory that is not scratch (a private home) becomes an empty read-only tmpfs holding
    only the bound paths, so nothing else in it (tokens, ssh keys) is visible; several paths under
    one such directory share it. Binding from ``/proc/self/fd/N`` reaches the original although its
    path is covered.
    """
    for cover, paths in plan.items():
        private = cover not in scratch
        if private:
            _mount("tmpfs", cover, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        for path in paths:
            source = f"/proc/self/fd/{fds[path]}"
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            if os.path.isdir(source):
                os.mkdir(path, 0o755)
            else:
                open(path, "w").close()
            _mount(source, path, None, MS_BIND | MS_REC, None)
            _mount_read_only(path)
        if private:
            _mount_read_only(cover)
    for fd in fds.values():
        os.close(fd)


def join_cgroup(cgroup: str) -> None:
    """Move this process (and so everything it forks) into the per-run cgroup the caller made."""
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
    _sandbox_seccomp.install(_libc)


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
        if config.get("cgroup"):
            join_cgroup(config["cgroup"])
        uid = SANDBOX_UID_BASE + host_pid() if mode == "root" else None
        workdir = config["workdir"]
        if mode != "none":
            os.umask(0o022)
            scratch = scratch_dirs()
            # Decided and opened before anything is hidden: afterwards the paths are gone from view.
            plan = plan_exposure(config["expose"], scratch, hide_untraversable=uid is not None)
            fds = open_exposed(plan)
            make_mounts_read_only()
            mount_private_scratch(scratch, config["scratch_mb"])
            bind_exposed(plan, fds, scratch)
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
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
