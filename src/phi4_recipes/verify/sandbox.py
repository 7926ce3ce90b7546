"""Run untrusted, model-written Python in a throwaway sandbox and capture what it did.

Isolation uses ``unshare`` (util-linux) and the kernel, nothing else:

- new network namespace (only a loopback that is down: no network at all), mount, pid, ipc
  and uts namespaces; as a non-root caller, a user namespace as well;
- a root filesystem of its own (``pivot_root`` onto a fresh tmpfs) that shows, read-only, only
  the system directories (/usr, /bin, /lib...), the base interpreter's install (never the caller's
  venv) and the few /etc files the dynamic linker reads. Every site-packages and dist-packages
  folder in view is an empty tmpfs except for the packages the caller allows (``allowed_packages``;
  none by default), and the caller's venv, checkout and home are covered likewise should they lie
  inside those directories: graded code cannot import the benchmark package, read its data or the
  tests. Besides that: five device nodes, private size- and inode-capped tmpfs on /tmp and /dev/shm,
  a fresh /proc; the program runs in its own directory on that tmpfs, which vanishes with the run.
  The sandbox's pid 1 gets its settings through an inherited descriptor, so its command line (which
  the program can read) names no host path;
- a seccomp filter: no sockets of any family except a connected AF_UNIX stream pair (asyncio's
  self-pipe) with its default buffers, no nested namespaces, no kernel keyrings (and a fresh,
  empty session keyring), no ``flock`` (a lock on a shared read-only file is visible to other runs);
- a CPU-time budget for the whole run, all its processes and threads together: every 10-250 ms the
  sandbox's pid 1 reads their CPU time (from the run's cgroup where it counts it, else adding up
  /proc) and kills them all once it passes ``timeout``. CPU time, not wall time, so that a busy
  machine (many sandboxes per node) does not fail correct programs;
- rlimits on CPU time (per process, a backstop), address space, processes (per run: as host root
  the program gets its own unprivileged uid), file size and open files; a per-run cgroup (v2, else
  v1) cap on total memory and processes where one can be made (``_sandbox_cgroup``), else no new
  process (threads only, so one address space holds everything), no memfd, secret memfd or SysV
  shared memory; no capabilities, ``no_new_privs``;
- a minimal environment (no secrets from the caller's environment);
- a wall-clock backstop (``wall_timeout``, by default ``default_wall_timeout(timeout)``) that SIGKILLs
  the whole sandbox, for a program that sleeps or blocks (which spends no CPU time), also when the
  program floods its output (past ``max_output_bytes`` the program is killed, or with
  ``on_output_limit="truncate"`` its further output is discarded); when the sandbox's pid 1 exits,
  the kernel kills everything left in its pid namespace.

If the namespaces cannot be created, ``run_python`` raises ``SandboxUnavailableError`` instead of
running the code unprotected, unless the caller passes ``allow_unsandboxed=True``.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from phi4_recipes.verify._sandbox_cgroup import create_run_cgroup
from phi4_recipes.verify._sandbox_supervise import supervise, write_all
from phi4_recipes.verify._sandbox_view import interpreter, system_view, view_with_packages

_INIT_SCRIPT = Path(__file__).with_name("_sandbox_init.py")
_NAMESPACE_WORKDIR = "/tmp/sandbox"
_SCRATCH_MB = 64
# Files (inodes) each scratch tmpfs may hold: size= bounds only their data, and 100k empty files took
# 695 MiB of host kernel memory without a cgroup. 16k is far above what a program writes to solve a task.
_SCRATCH_INODES = 16384
# The program is written into the scratch tmpfs; past half of it, it would crowd out the files it writes.
MAX_PROGRAM_BYTES = _SCRATCH_MB * 2**20 // 2
# Without a cgroup, only RLIMIT_AS (per process) bounds memory: the seccomp filter then refuses new
# processes, so the program's threads (which share its one address space) are all the limit counts.
FALLBACK_MAX_PROCESSES = 8
_MAX_TIMEOUT_S = 24 * 3600.0
# Seconds past ``timeout`` the wall-clock backstop allows at least: interpreter start-up on a loaded node.
_WALL_SLACK_S = 5.0
_PROGRAM_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": _NAMESPACE_WORKDIR,
    "TMPDIR": _NAMESPACE_WORKDIR,
    "LANG": "C.UTF-8",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    # BLAS libraries otherwise reserve one thread (and its address space) per host core.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class SandboxUnavailableError(RuntimeError):
    """The kernel or the container refused to create the sandbox; the code was not run."""


@dataclass(frozen=True)
class ExecResult:
    """What a sandboxed program did.

    Attributes:
        ok (bool): exited with status 0, within time, and within the output limit unless that only
            truncated the output (``on_output_limit="truncate"``).
        exit_code (int | None): exit status; ``-N`` if killed by signal N; None if the sandbox killed it
            (CPU-time or wall-clock time-out, output limit, ``stop()``) or its init process vanished.
        stdout (str): captured standard output (UTF-8, invalid bytes replaced), at most ``max_output_bytes``.
        stderr (str): captured standard error, same limits.
        timed_out (bool): spent its CPU-time budget (``timeout``), or hit the wall-clock backstop
            (``wall_timeout``).
        output_truncated (bool): wrote more than ``max_output_bytes``: was killed for it, or (with
            ``on_output_limit="truncate"``) the rest of its output was discarded.
        duration_s (float): wall-clock seconds, sandbox setup included.
        limits (str): what bounded total memory: ``"cgroup v2"`` or ``"cgroup v1"`` (a per-run cgroup
            capped the whole run's memory, and its processes) or ``"rlimit"`` (the address-space limit of the
            one process the run may have: threads, no new process, no memfd (plain or secret) or SysV
            shared memory).
        peak_memory_bytes (int | None): most memory the whole run held at once, as its cgroup recorded
            it; None without a cgroup (or where the kernel does not record peaks).
        cpu_seconds (float | None): CPU time (user + system) of all the run's processes and threads
            together, as its cgroup counted it, else as the sandbox's pid 1 added it up from /proc (in
            10 ms ticks per process); None if the host killed the run (wall-clock backstop, output
            limit, ``stop()``) before its pid 1 could report.
    """

    ok: bool
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    output_truncated: bool = False
    duration_s: float = 0.0
    limits: str = "rlimit"
    peak_memory_bytes: int | None = None
    cpu_seconds: float | None = None


def default_wall_timeout(timeout: float) -> float:
    """The wall-clock backstop for a CPU-time ``timeout``: ``max(3 * timeout, timeout + 5)`` seconds.

    Three times the budget lets a CPU-bound program finish on a third of a core (a load of about 6 on
    2 cores; a load of 5 failed correct programs under a wall-clock timeout), and the 5 s floor covers
    the interpreter's start-up there. A program that sleeps or waits spends no CPU time: this is what ends it.
    """
    return max(3.0 * timeout, timeout + _WALL_SLACK_S)


def isolation_mode() -> str:
    """Return how this process can isolate programs: ``"root"`` (host root) or ``"userns"`` (user namespace)."""
    return "root" if os.geteuid() == 0 else "userns"


def _unshare_prefix(mode: str) -> list[str]:
    unshare = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare") else None)
    if unshare is None:
        raise SandboxUnavailableError(
            "`unshare` was not found; install util-linux (Debian: apt-get install util-linux)"
        )
    prefix = [unshare]
    if mode == "userns":
        prefix += ["--user", "--map-root-user"]
    # --kill-child: if unshare itself is killed, the sandbox's pid 1 (and so the whole pid namespace) dies too.
    return prefix + [
        "--net",
        "--mount",
        "--pid",
        "--ipc",
        "--uts",
        "--fork",
        "--kill-child",
        "--propagation",
        "private",
    ]


_isolation_checked: dict[str, str | None] = {}
_isolation_lock = threading.Lock()


def check_isolation() -> None:
    """Raise ``SandboxUnavailableError`` (with the reason) unless sandboxed runs work here; cached per process."""
    mode = isolation_mode()
    with _isolation_lock:
        if mode not in _isolation_checked:
            try:
                probe = _Launch(mode, "print('sandbox-ok')", stdin="", timeout=30.0, wall_timeout=30.0,
                                memory_mb=256, max_processes=8, file_size_mb=1, max_output_bytes=4096,
                                on_output_limit="kill", view=view_with_packages(()), pass_fds=()).finish()  # fmt: skip
                problem = None if probe.stdout.strip() == "sandbox-ok" else f"probe failed: {probe}"
            except SandboxUnavailableError as error:
                problem = str(error)
            _isolation_checked[mode] = problem
    problem = _isolation_checked[mode]
    if problem is not None:
        namespaces = "user, " if mode == "userns" else ""
        raise SandboxUnavailableError(
            f"cannot isolate untrusted code on this machine: tried {mode} mode (`unshare` with {namespaces}net, "
            f"mount, pid, ipc and uts namespaces, a new root with {', '.join(b for b, _ in system_view()['binds'])} "
            f"bound read-only, running {interpreter()[0]}): {problem}"
        )


def sandbox_available() -> bool:
    """Whether ``run_python`` can isolate code here (without raising)."""
    try:
        check_isolation()
    except SandboxUnavailableError:
        return False
    return True


def _encode_text(name: str, text: str) -> bytes:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be str, got {type(text).__name__}")
    try:
        return text.encode()
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{name} is not valid Unicode text: {error.reason} at index {error.start} ({text[error.start]!r})"
        ) from None


def _check_limits(**limits: float) -> None:
    lowest = {"timeout": 0.01, "wall_timeout": 0.01, "memory_mb": 32, "max_processes": 2, "file_size_mb": 0,
              "max_output_bytes": 1}  # fmt: skip
    for name, value in limits.items():
        integral = name not in ("timeout", "wall_timeout")
        if isinstance(value, bool) or not isinstance(value, int if integral else int | float):
            raise ValueError(f"{name} must be {'an int' if integral else 'a number'}, got {value!r}")
        if not (value >= lowest[name] and math.isfinite(value)):
            raise ValueError(f"{name} must be finite and >= {lowest[name]}, got {value}")
        if name in ("timeout", "wall_timeout") and value > _MAX_TIMEOUT_S:
            raise ValueError(f"{name} must be at most {_MAX_TIMEOUT_S:.0f} s, got {value}")


def start_python(code: str, *, pass_fds: Sequence[int] = (), **options) -> SandboxedProcess:
    """Start ``code`` in a sandbox and return at once; ``SandboxedProcess.result()`` waits for it.

    Args:
        code (str): as for ``run_python``.
        pass_fds (Sequence[int]): descriptors the program inherits under the same numbers (pipes to
            another process). They are closed in this process once the sandbox holds them.
        options: the keyword arguments of ``run_python`` (same defaults).
    """
    unknown = sorted(set(options) - set(_RUN_DEFAULTS))
    if unknown:
        raise TypeError(f"start_python() got unexpected keyword argument(s) {unknown}")
    settings = {**_RUN_DEFAULTS, **options}
    return SandboxedProcess(_prepare(code, *(settings[name] for name in _RUN_DEFAULTS), pass_fds))


def run_python(
    code: str,
    *,
    stdin: str = "",
    timeout: float = 5.0,
    wall_timeout: float | None = None,
    memory_mb: int = 512,
    max_processes: int = 32,
    file_size_mb: int = 16,
    max_output_bytes: int = 1 << 20,
    on_output_limit: str = "kill",
    allowed_packages: Sequence[str] = (),
    allow_unsandboxed: bool = False,
) -> ExecResult:
    """Run Python source in a sandbox with no network, a private scratch directory and resource limits.

    Args:
        code (str): the program, run as ``python -I main.py`` in its own empty directory; at most
            ``MAX_PROGRAM_BYTES`` once encoded as UTF-8.
        stdin (str): text fed to the program's standard input.
        timeout (float): CPU seconds (user + system, all the run's processes and threads together) before
            the whole sandbox is killed, to about 10 ms. A program that sleeps or waits spends none:
            ``wall_timeout`` ends it.
        wall_timeout (float | None): wall-clock seconds, sandbox start-up included, before the whole
            sandbox is killed; None for ``default_wall_timeout(timeout)`` (``max(3 * timeout, timeout + 5)``).
        memory_mb (int): address-space limit per process, and total memory of the run where a
            cgroup applies, in MiB.
        max_processes (int): processes and threads the program may have at once (RLIMIT_NPROC, and
            the cgroup's pids.max); where no cgroup applies, threads only (no new process: the
            memory limit then caps the one address space), at most ``FALLBACK_MAX_PROCESSES``.
        file_size_mb (int): largest file the program may write, in MiB.
        max_output_bytes (int): stdout + stderr bytes kept; more sets ``output_truncated``.
        on_output_limit (str): what happens past ``max_output_bytes``: ``"kill"`` the program (its
            output is the answer, as in stdin/stdout tests; the run fails) or ``"truncate"`` (drain and
            discard the rest; the program runs on, and its exit status alone decides ``ok``). Either
            way the CPU-time budget or the wall-clock backstop still ends a program that never stops printing.
        allowed_packages (Sequence[str]): top-level import names (``"numpy"``) of installed packages
            the program may import besides the standard library; each is bound read-only with what
            its distribution installed beside it. Their own dependencies are not added: list them.
        allow_unsandboxed (bool): if isolation is unavailable, run with rlimits and seccomp only (and,
            as root, an unprivileged uid) instead of raising. Never the default: the caller's files
            stay reachable, and the program runs on the caller's interpreter with all its packages.

    Returns:
        ExecResult: exit status, captured output and what stopped the program.

    Raises:
        SandboxUnavailableError: isolation is unavailable and ``allow_unsandboxed`` is False.
        ValueError: a limit is out of range or not finite, the code or stdin holds a lone surrogate,
            the code is larger than ``MAX_PROGRAM_BYTES``, ``on_output_limit`` is unknown, or an
            allowed package is not installed.
    """
    launch = _prepare(code, stdin, timeout, wall_timeout, memory_mb, max_processes, file_size_mb,
                      max_output_bytes, on_output_limit, allowed_packages, allow_unsandboxed, ())  # fmt: skip
    return launch.finish()


# run_python's keyword arguments and defaults, in _prepare's order; start_python takes the same.
_RUN_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(run_python).parameters.items()
                 if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def _prepare(code, stdin, timeout, wall_timeout, memory_mb, max_processes, file_size_mb, max_output_bytes,
             on_output_limit, allowed_packages, allow_unsandboxed, pass_fds) -> _Launch:  # fmt: skip
    """Validate the arguments, check isolation, and start the sandbox."""
    try:
        program, stdin_bytes = _encode_text("code", code), _encode_text("stdin", stdin)
        if len(program) > MAX_PROGRAM_BYTES:
            raise ValueError(f"code is {len(program)} bytes; the sandbox runs programs of at most {MAX_PROGRAM_BYTES}")
        _check_limits(timeout=timeout, memory_mb=memory_mb, max_processes=max_processes, file_size_mb=file_size_mb,
                      max_output_bytes=max_output_bytes)  # fmt: skip
        if wall_timeout is not None:
            _check_limits(wall_timeout=wall_timeout)
        if on_output_limit not in ("kill", "truncate"):
            raise ValueError(f"on_output_limit must be 'kill' or 'truncate', got {on_output_limit!r}")
        if isinstance(allowed_packages, str):
            raise ValueError(f"allowed_packages must be a list of import names, got the string {allowed_packages!r}")
        view = view_with_packages(tuple(allowed_packages))
    except BaseException:
        for fd in pass_fds:
            os.close(fd)
        raise
    wall_timeout = default_wall_timeout(timeout) if wall_timeout is None else wall_timeout
    limits = dict(timeout=float(timeout), wall_timeout=float(wall_timeout), memory_mb=memory_mb,
                  max_processes=max_processes, file_size_mb=file_size_mb, max_output_bytes=max_output_bytes,
                  on_output_limit=on_output_limit, view=view, pass_fds=tuple(pass_fds))  # fmt: skip
    try:
        check_isolation()
        mode = isolation_mode()
    except SandboxUnavailableError:
        if not allow_unsandboxed:
            for fd in pass_fds:
                os.close(fd)
            raise
        mode = "none"
    return _Launch(mode, program, stdin=stdin_bytes, **limits)


def _init_config(mode: str, *, program_fd: int, init_dir_fd: int, status_fd: int, workdir: str, python: str,
                 view: dict, cgroup, timeout: float, wall_timeout: float, memory_mb: int, max_processes: int,
                 file_size_mb: int) -> dict:
    """What the sandbox's init script reads (``_sandbox_init``): its descriptors, view, limits and cgroups."""
    # What counts the run's CPU time where a cgroup applies (see _sandbox_init.RunCpuClock).
    cpu_usage_file = cgroup.cpu_usage_file if cgroup else None
    return {
        "mode": mode,
        "program_fd": program_fd,
        "init_dir_fd": init_dir_fd,
        "status_fd": status_fd,
        "workdir": workdir,
        "python": python,
        "view": view,
        "cgroups": [str(path) for path in cgroup.paths] if cgroup else [],
        "cpu_usage_file": str(cpu_usage_file) if cpu_usage_file else None,
        "env": {**_PROGRAM_ENV, "HOME": workdir, "TMPDIR": workdir},
        "cpu_seconds": timeout,
        "cpu_rlimit_seconds": math.ceil(timeout) + 1,
        "wall_seconds": wall_timeout,
        "memory_mb": memory_mb,
        # The sandbox's pid 1 shares the program's uid in user-namespace mode and counts against it.
        "max_processes": max_processes + (1 if mode == "userns" else 0),
        "file_size_mb": file_size_mb,
        "max_open_files": 256,
        "scratch_mb": _SCRATCH_MB,
        "scratch_inodes": _SCRATCH_INODES,
    }


class _Launch:
    """One started sandbox: the init script (see ``_sandbox_init``) under ``unshare``, and what it needs."""

    def __init__(self, mode: str, program: str | bytes, *, stdin: str | bytes, timeout: float,
                 wall_timeout: float, memory_mb: int, max_processes: int, file_size_mb: int, max_output_bytes: int,
                 on_output_limit: str, view: dict, pass_fds: tuple[int, ...]):  # fmt: skip
        self.started = time.monotonic()
        self.deadline = self.started + wall_timeout
        self.stdin = stdin.encode() if isinstance(stdin, str) else stdin
        self.max_output_bytes = max_output_bytes
        self.kill_on_output_limit = on_output_limit == "kill"
        self.host_workdir = tempfile.mkdtemp(prefix="phi4-sandbox-") if mode == "none" else None
        self.cgroup = create_run_cgroup(memory_mb, max_processes + 1) if mode != "none" else None  # +1: init
        if self.cgroup is None:
            max_processes = min(max_processes, FALLBACK_MAX_PROCESSES)
        program_fd, config_fd = os.memfd_create("sandbox-program"), os.memfd_create("sandbox-config")
        # The init script runs as /proc/self/fd/N/_sandbox_init.py: the program can read pid 1's command line.
        init_dir_fd = os.open(_INIT_SCRIPT.parent, os.O_PATH | os.O_DIRECTORY)
        self.status_read, status_write = os.pipe()
        try:
            write_all(program_fd, program.encode() if isinstance(program, str) else program)
            workdir = self.host_workdir or _NAMESPACE_WORKDIR
            # Unsandboxed, everything is in view anyway: the caller's own interpreter, with its packages.
            python = sys.executable if mode == "none" else interpreter()[0]
            config = _init_config(mode, program_fd=program_fd, init_dir_fd=init_dir_fd, status_fd=status_write,
                                  workdir=workdir, python=python, view=view, cgroup=self.cgroup, timeout=timeout,
                                  wall_timeout=wall_timeout, memory_mb=memory_mb, max_processes=max_processes,
                                  file_size_mb=file_size_mb)
            write_all(config_fd, json.dumps(config).encode())
            prefix = [] if mode == "none" else _unshare_prefix(mode)
            # The base interpreter (in view anyway) rather than this venv's, whose path names the checkout.
            init = [python, "-I", "-S", f"/proc/self/fd/{init_dir_fd}/{_INIT_SCRIPT.name}", str(config_fd)]
            self.process = subprocess.Popen(
                [*prefix, *init],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(program_fd, config_fd, init_dir_fd, status_write, *pass_fds),
                env={"PATH": _PROGRAM_ENV["PATH"], "LANG": "C.UTF-8"},
                cwd="/",
                start_new_session=True,  # one process group to kill at the deadline
            )
        except BaseException:
            os.close(self.status_read)
            self._cleanup()
            raise
        finally:
            for fd in (program_fd, config_fd, init_dir_fd, status_write, *pass_fds):
                os.close(fd)

    def finish(self, stop_fd: int | None = None) -> ExecResult:
        """Supervise the run to its end (or until ``stop_fd`` becomes readable) and report it."""
        try:
            stdout, stderr, timed_out, truncated = supervise(
                self.process, self.stdin, self.deadline, self.max_output_bytes, self.kill_on_output_limit, stop_fd
            )
            killed = timed_out or (truncated and self.kill_on_output_limit)
            with os.fdopen(self.status_read, "rb") as status_file:
                status_text = status_file.read().decode() if not killed else ""
            peak = self.cgroup.peak_memory_bytes() if self.cgroup else None
        finally:
            self._cleanup()
        status = json.loads(status_text) if status_text.strip() else {}
        if "setup_error" in status:
            raise SandboxUnavailableError(f"sandbox setup failed: {status['setup_error']}")
        stderr_text = stderr.decode(errors="replace")
        if not status and not killed and stderr_text.startswith("unshare:"):
            raise SandboxUnavailableError(stderr_text.strip())
        # The init killed the run: its CPU time passed the budget (or, the host gone, its own wall backstop).
        stopped_by_init = bool(status.get("cpu_timed_out") or status.get("wall_timed_out"))
        exit_code = None if stopped_by_init else status.get("exit_code")
        timed_out = timed_out or stopped_by_init or exit_code == -signal.SIGXCPU
        return ExecResult(
            ok=exit_code == 0 and not timed_out and not killed,
            exit_code=exit_code,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr_text,
            timed_out=timed_out,
            output_truncated=truncated,
            duration_s=time.monotonic() - self.started,
            limits=self.cgroup.kind if self.cgroup else "rlimit",
            peak_memory_bytes=peak,
            cpu_seconds=status.get("cpu_seconds"),
        )

    def _cleanup(self) -> None:
        if self.host_workdir:
            shutil.rmtree(self.host_workdir, ignore_errors=True)
        if self.cgroup:
            self.cgroup.remove()


class SandboxedProcess:
    """A sandboxed program started by ``start_python``; a background thread supervises it."""

    def __init__(self, launch: _Launch):
        self._stop_read, self._stop_write = os.pipe()
        self._outcome: ExecResult | BaseException | None = None
        self._thread = threading.Thread(target=self._supervise, args=(launch,), daemon=True)
        self._thread.start()

    def _supervise(self, launch: _Launch) -> None:
        try:
            self._outcome = launch.finish(self._stop_read)
        except BaseException as error:  # noqa: BLE001 - handed to the thread that calls result()
            self._outcome = error

    def stop(self) -> None:
        """Kill the program now if it is still running (its result then has ``exit_code`` None)."""
        if self._stop_write >= 0:
            os.write(self._stop_write, b"x")

    def result(self) -> ExecResult:
        """Wait for the program to end and return what it did."""
        self._thread.join()
        for fd in (self._stop_read, self._stop_write):
            if fd >= 0:
                os.close(fd)
        self._stop_read = self._stop_write = -1
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome
