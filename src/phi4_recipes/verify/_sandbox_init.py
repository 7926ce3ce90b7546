"""Init process of one sandbox run; ``sandbox.py`` starts it with ``python -I -S`` inside ``unshare``.

It runs as pid 1 of fresh network/mount/pid/ipc/uts namespaces (mode "root" or "userns") or,
when the caller opted out of isolation, in the host namespaces (mode "none"). It:

1. reads its settings (JSON) from the inherited fd that argv[1] names, and the program from the
   fd they name. The host starts it as ``/proc/self/fd/N/_sandbox_init.py`` through a descriptor
   of this folder, so its command line, which the program can read in /proc/1/cmdline, names no
   host path and holds no settings;
2. joins the per-run cgroup(s) when the caller made them (memory and process limits for the whole run);
3. builds the program's whole filesystem on a fresh tmpfs and makes it the root (``pivot_root``),
   so nothing of the host is in view unless listed (see ``_sandbox_view.view_with_packages``): read-only binds of
   the system directories, the interpreter's install and a few /etc files; empty read-only tmpfs
   over the package folders inside them, holding binds of only the allowed packages; five device
   nodes; private size- and inode-capped tmpfs on /tmp and /dev/shm; a fresh /proc that only shows
   the sandbox's own processes. Everything but /tmp, /dev/shm and /proc is then read-only;
4. forks the program with rlimits, no capabilities, ``no_new_privs``, a fresh session keyring, the
   seccomp filter of ``_sandbox_seccomp`` and (as host root) a per-run unprivileged uid, so
   RLIMIT_NPROC really applies and counts only this run;
5. reaps every process until the program exits, meanwhile reading the CPU time of every process
   and thread of the run (``RunCpuClock``: the run's cgroup counts it, else /proc); once that passes
   the budget, it kills them all.
   Then it writes the program's status and the run's CPU time as JSON to the status fd. Returning
   from pid 1 makes the kernel kill whatever the program left behind.

Setup failures are reported on the status fd as ``{"setup_error": ...}`` so the caller can refuse to run.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time

# The init script runs with -I -S, so its own folder is not on the path; the filter lives beside it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import _sandbox_seccomp  # noqa: E402

sys.path.remove(_HERE)  # run from /proc/self/fd/N: that descriptor is closed before the program starts

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
# Inodes of the tmpfs that only the setup writes (the staging root, the covers over package folders): their
# folders, symlinks and mount points. Read-only once the program runs; the cap only bounds a runaway setup.
SETUP_INODES = 4096
PR_SET_CHILD_SUBREAPER = 36
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# How often the run's CPU time is added up, at most and at least: often enough near the budget to stop
# within ~10 ms of it, rarely while far from it (each poll reads /proc/<pid>/stat of every process).
CPU_POLL_S = (0.01, 0.25)

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


def _tmpfs(target: str, size: str, inodes: int, mode: str) -> None:
    # nr_inodes too: size= bounds the data only, and empty files (100k of them) cost kernel memory.
    _make_mount_point(target, directory=True)
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},nr_inodes={inodes},mode={mode}")


def build_root(view: dict, scratch_mb: int, scratch_inodes: int) -> str:
    """Assemble the program's filesystem under a fresh tmpfs and return where it is; the host stays as it was.

    ``view`` (from ``_sandbox_view.view_with_packages``): ``binds`` [[host path, path inside]] bound read-only,
    ``symlinks`` [[path, target]], ``hidden`` [paths inside] each covered by an empty tmpfs, and
    ``packages`` [[host path, path inside]] bound into those covers afterwards.
    """
    # Opened before anything is covered: afterwards the paths may be gone from view.
    sources = {source: os.open(source, os.O_PATH) for source, _ in view["binds"] + view["packages"]}
    sources.update({f"/dev/{name}": os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES})
    try:
        root = _STAGING
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size=1m,nr_inodes={SETUP_INODES},mode=0755")
        # Scratch first: an interpreter installed under /tmp is then bound inside it, not covered by it.
        for scratch in ("/tmp", "/dev/shm"):
            _tmpfs(root + scratch, f"{scratch_mb}m", scratch_inodes, "1777")
        for source, target in view["binds"]:
            _bind(sources[source], root + target)
        for hidden in view["hidden"]:
            # Binds stay writable until enter_root: never create a folder through one onto the host.
            if os.path.isdir(root + hidden):
                _mount("tmpfs", root + hidden, "tmpfs", MS_NOSUID | MS_NODEV,
                       f"size=64k,nr_inodes={SETUP_INODES},mode=0755")  # fmt: skip
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
        # A per-process backstop in whole seconds past the budget; the init's poll of the whole run's CPU
        # time (run_cpu_seconds) normally stops it first.
        resource.RLIMIT_CPU: config["cpu_rlimit_seconds"],
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


def _stat_cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid`` (all its threads, live or gone) and of the children it reaped; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # Fields 14-17 of proc(5): utime, stime, cutime, cstime (fields[0] is field 3, the state).
    return sum(int(ticks) for ticks in fields[11:15]) / _CLOCK_TICKS


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (mode "none": the host's /proc shows all the host's processes)."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        try:
            threads = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                with open(f"/proc/{parent}/task/{thread}/children") as handle:
                    children = [int(child) for child in handle.read().split()]
            except (OSError, ValueError):
                continue
            found += children
            pending += children
    return sorted(found)


def _run_processes(child: int | None) -> list[int]:
    """The run's live processes but this init, in ascending pid order; ``child``: the program, if not reaped."""
    if os.getpid() == 1:
        return sorted(int(name) for name in os.listdir("/proc") if name.isdigit() and name != "1")
    # Mode "none": where the kernel lists no children, the program alone (it cannot fork there). Never a reaped
    # program's pid: on the host, another process may have it by now.
    return _descendants(os.getpid()) or ([child] if child is not None else [])


def run_cpu_seconds(child: int | None) -> float:
    """CPU time of every process and thread of the run so far, this init's own excepted.

    The children this init has reaped (``RUSAGE_CHILDREN``, which holds what they had reaped in turn),
    plus each live process's own and reaped children's time from /proc/<pid>/stat. Read in that order, and
    the live processes parent before child (pids only grow in a fresh pid namespace), a process reaped
    meanwhile is missed for one poll rather than counted twice.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + sum(_stat_cpu_seconds(pid) for pid in _run_processes(child))


class RunCpuClock:
    """CPU seconds the run has spent: its cgroup's counter where there is one, else ``run_cpu_seconds``.

    The counter (``_sandbox_cgroup.RunCgroup.cpu_usage_file``) also holds the time of processes the
    kernel reaped by itself, which /proc shows nowhere. It is opened before the host's /sys goes out of view.
    """

    def __init__(self, usage_file: str | None):
        try:
            self.fd = os.open(usage_file, os.O_RDONLY) if usage_file else None
        except OSError:
            self.fd = None  # /proc still sees all but what the kernel reaped by itself
        self.own_at_start = self._own()

    @staticmethod
    def _own() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def seconds(self, child: int | None) -> float:
        """CPU time of the run so far; ``child``: the program, while it is not reaped."""
        if self.fd is None:
            return run_cpu_seconds(child)
        text = os.pread(self.fd, 4096, 0).decode()
        # v2 cpu.stat: "usage_usec N" first; v1 cpuacct.usage: nanoseconds.
        total = int(text.split()[1]) / 1e6 if text.startswith("usage_usec") else int(text) / 1e9
        # This init is in the cgroup too: the time it spent since it joined is not the program's.
        return total - (self._own() - self.own_at_start)


def kill_run(child: int) -> None:
    """SIGKILL every process of the run: as pid 1, ``kill(-1)`` reaches exactly the rest of its namespace."""
    if os.getpid() == 1:
        os.kill(-1, signal.SIGKILL)
        return
    for _ in range(3):  # mode "none": the program cannot fork there, but a descendant may appear meanwhile
        for pid in _run_processes(child):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _reap_ready(child: int) -> int | None:
    """Reap every process that has exited (orphans come to this init); the program's wait status if it did."""
    status = None
    while True:
        try:
            pid, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if pid == 0:
            return status
        if pid == child:
            status = raw


def supervise(child: int, clock: RunCpuClock, cpu_budget: float, wall_seconds: float, cpus: int) -> dict:
    """Reap every process until ``child`` exits, killing the run once its CPU time passes ``cpu_budget``.

    SIGCHLD is blocked (before the fork), so ``sigtimedwait`` wakes as soon as a process exits and sleeps
    the poll interval otherwise: as long as the run, using at most ``cpus`` cores, could not spend what
    is left of the budget, clamped to ``CPU_POLL_S``. ``wall_seconds`` is a backstop should the host
    that watches the wall clock be gone.

    Returns:
        dict: ``exit_code`` (``-N`` for signal N), ``cpu_seconds`` and, when it stopped the run,
        ``cpu_timed_out`` or ``wall_timed_out``.
    """
    deadline = time.monotonic() + wall_seconds
    report: dict = {}
    status = None
    while status is None:
        status = _reap_ready(child)
        if status is not None:
            break
        used = clock.seconds(child)
        over = "cpu_timed_out" if used >= cpu_budget else None
        if over is None and time.monotonic() >= deadline:
            over = "wall_timed_out"
        if over:
            report[over] = True
            kill_run(child)
            status = os.waitpid(child, 0)[1]
            break
        interval = min(CPU_POLL_S[1], max(CPU_POLL_S[0], (cpu_budget - used) / cpus))
        signal.sigtimedwait([signal.SIGCHLD], interval)
    _reap_ready(child)  # whatever else has ended, so that its time is in RUSAGE_CHILDREN
    report["cpu_seconds"] = round(clock.seconds(None), 3)
    report["exit_code"] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return report


def _read_fd(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def main() -> None:
    config = json.loads(_read_fd(int(sys.argv[1])))
    os.close(config["init_dir_fd"])  # the host folder this script was started from; imports are done
    status_pipe = os.fdopen(config["status_fd"], "w")
    program = _read_fd(config["program_fd"])
    cpus = os.cpu_count() or 1  # read now: sysconf may look in /sys, which the sandbox does not show
    try:
        mode = config["mode"]
        if mode not in ("root", "userns", "none"):
            raise SetupError(f"unknown sandbox mode {mode!r}")
        join_cgroups(config["cgroups"])
        clock = RunCpuClock(config["cpu_usage_file"])
        uid = SANDBOX_UID_BASE + host_pid() if mode == "root" else None
        workdir = config["workdir"]
        if mode != "none":
            os.umask(0o022)
            enter_root(build_root(config["view"], config["scratch_mb"], config["scratch_inodes"]))
            os.makedirs(workdir, mode=0o700)
        else:
            # No pid namespace: orphans of the program come back to this init, to be counted and killed.
            _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(SET_CHILD_SUBREAPER)")
        program_path = os.path.join(workdir, "main.py")
        with open(program_path, "wb") as handle:
            handle.write(program)
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(program_path, uid, uid)
    except (SetupError, OSError) as error:
        status_pipe.write(json.dumps({"setup_error": str(error)}))
        sys.exit(1)

    # Blocked before the fork, so that no exit is missed before supervise() waits for it.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    child = os.fork()
    if child == 0:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, [])  # the mask survives exec
            status_pipe.close()
            drop_privileges(config, uid)
            os.chdir(workdir)
            os.execve(config["python"], [config["python"], "-I", program_path], config["env"])
        except BaseException as error:  # noqa: BLE001 - report anything, then die without running cleanup twice
            os.write(2, f"sandbox: could not start the program: {error}\n".encode())
        os._exit(127)

    report = supervise(child, clock, config["cpu_seconds"], config["wall_seconds"] + 2, cpus)
    status_pipe.write(json.dumps(report))
    status_pipe.close()


if __name__ == "__main__":
    main()
