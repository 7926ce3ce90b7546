"""Init process of one sandbox run; ``sandbox.py`` starts it with ``python -I -S`` inside ``unshare``.

It runs as pid 1 of fresh network/mount/pid/ipc/uts namespaces (mode "root" or "userns") or,
when the caller opted out of isolation, in the host namespaces (mode "none"). It:

1. reads its settings from argv[1] (JSON) and the program from the inherited fd they name;
2. makes every existing mount read-only, puts small private tmpfs mounts on the world-writable
   directories and a fresh /proc that only shows the sandbox's own processes;
3. forks the program with rlimits, no capabilities, ``no_new_privs`` and (as host root) a
   per-run unprivileged uid, so RLIMIT_NPROC really applies and counts only this run;
4. reaps every process until the program exits, then writes its status as JSON to the status fd.
   Returning from pid 1 makes the kernel kill whatever the program left behind.

Setup failures are reported on the status fd as ``{"setup_error": ...}`` so the caller can refuse to run.
"""

import ctypes
import json
import os
import resource
import signal
import sys

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
_WRITABLE_SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 38, 24, 28
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: exec as uid 0 (in a user namespace) grants no capabilities.
SECURE_NOROOT_LOCKED = 0x1 | 0x2
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


def mount_private_scratch(workdir: str, scratch_mb: int) -> None:
    """Hide the host's world-writable directories behind small private tmpfs mounts and mount a fresh /proc."""
    for directory in _WRITABLE_SCRATCH_DIRS:
        if os.path.isdir(directory) and not os.path.islink(directory):
            _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, f"size={scratch_mb}m,mode=1777")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    os.makedirs(workdir, mode=0o700)


def _mount_read_only(target: str) -> None:
    # A bind mount or a new tmpfs starts writable even when its source is read-only.
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


def expose_path(path: str, stage: str) -> None:
    """Make ``path`` reachable by the unprivileged sandbox uid without opening its private parents.

    The interpreter may live under a 0700 directory (pyenv in /root). Each such parent is replaced,
    in this mount namespace only, by an empty read-only tmpfs that holds just a read-only bind of
    the next component, so nothing else in that parent (tokens, ssh keys) becomes visible.

    Args:
        path (str): absolute, symlink-free path that must be reachable (e.g. the Python prefix).
        stage (str): empty directory on a private tmpfs, used to keep the hidden parent in view while binding.
    """
    parts = [part for part in path.split("/") if part]
    current = "/"
    for name in parts:
        child = os.path.join(current, name)
        if os.stat(current).st_mode & 0o001 == 0:
            _mount(current, stage, None, MS_BIND, None)
            _mount("tmpfs", current, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
            if os.path.isdir(os.path.join(stage, name)):
                os.mkdir(child)
            else:
                open(child, "w").close()
            _mount(os.path.join(stage, name), child, None, MS_BIND | MS_REC, None)
            _mount_read_only(child)
            _mount_read_only(current)
            _check(_libc.umount2(stage.encode(), MNT_DETACH), f"umount {stage}")
        current = child


def host_pid() -> int:
    """This process's pid in the host pid namespace (unique among live processes), read before /proc is replaced."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("NSpid:"):
                return int(line.split()[1])
    return os.getpid()


def drop_privileges(config: dict, uid: int | None) -> None:
    """In the forked child: rlimits, then no capabilities and no way to regain them."""
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
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


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
        uid = SANDBOX_UID_BASE + host_pid() if mode == "root" else None
        workdir = config["workdir"]
        if mode != "none":
            make_mounts_read_only()
            mount_private_scratch(workdir, config["scratch_mb"])
            if uid is not None:
                stage = "/tmp/.stage"
                os.mkdir(stage, 0o700)
                for path in config["expose"]:
                    expose_path(path, stage)
                os.rmdir(stage)
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
