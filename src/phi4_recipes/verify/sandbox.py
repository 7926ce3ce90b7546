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

import functools
import glob
import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import selectors
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from phi4_recipes.verify._sandbox_cgroup import create_run_cgroup

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


# Bound read-only at the same path when present (a symlink, as /bin on merged-/usr systems, is copied).
_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache", "/etc/ld.so.conf",
                 "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")  # fmt: skip
_PACKAGE_FOLDERS = ("lib*/python*/site-packages", "lib*/python*/dist-packages", "local/lib*/python*/site-packages",
                    "local/lib*/python*/dist-packages")  # fmt: skip


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


@functools.cache
def _interpreter() -> tuple[str, str]:
    """The base interpreter the program runs on (a venv's would bring the venv's packages) and its install folder."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for name in (f"python{version}", "python3", "python"):
        candidate = os.path.join(sys.base_prefix, "bin", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate), os.path.realpath(sys.base_prefix)
    # A venv made with --copies: its binary, without its pyvenv.cfg in view, falls back to the base install.
    return os.path.realpath(sys.executable), os.path.realpath(sys.base_prefix)


def _checkout() -> str:
    """The folder this package was loaded from: the checkout for a source tree or editable install."""
    package_parent = Path(__file__).resolve().parents[2]
    return str(package_parent.parent if package_parent.name == "src" else package_parent)


def _traversable(path: str) -> list[str]:
    """``path``, or its entries when it is a folder others may not enter (an install under ``mktemp -d``, 0700).

    As host root the program runs as another uid: the folders the sandbox makes above a bind are
    open to it, but a bound folder keeps its own mode. Its entries are bound one by one instead.
    """
    if os.path.isdir(path) and not os.stat(path).st_mode & 0o001:
        return [os.path.join(path, name) for name in sorted(os.listdir(path))]
    return [path]


@functools.cache
def _system_view() -> dict:
    """What every sandbox shows (see ``_sandbox_init.build_root``) and the folder allowed packages go into."""
    python, prefix = _interpreter()
    binds, symlinks = [], []
    for path in _SYSTEM_PATHS:
        if os.path.islink(path):
            symlinks.append([path, os.readlink(path)])
        elif os.path.exists(path):
            binds.append([path, path])
    for path in (prefix, python):
        if not any(_inside(path, bound) for bound, _ in binds):
            binds += [[entry, entry] for entry in _traversable(path)]
    roots = [bound for bound, _ in binds if os.path.isdir(bound)]
    candidates = {found for root in roots + [prefix] for pattern in _PACKAGE_FOLDERS
                  for found in glob.glob(f"{root}/{pattern}")}  # fmt: skip
    candidates.update(site.getsitepackages([sys.base_prefix]))
    candidates.update(path for path in sys.path if os.path.basename(path) in ("site-packages", "dist-packages"))
    # Should the caller's venv, checkout or home lie inside a bound folder (/usr/src/app), cover them too.
    candidates.update((sys.prefix, sys.exec_prefix, _checkout(), os.path.expanduser("~")))
    needed = [python] + [os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")]
    hidden: list[str] = []
    for path in sorted({os.path.realpath(candidate) for candidate in candidates if os.path.isdir(candidate)}):
        in_view = any(_inside(path, root) and path != root for root in roots)
        if in_view and not any(_inside(kept, path) for kept in needed) and not any(_inside(path, h) for h in hidden):
            hidden.append(path)
    site_dir = next((path for path in map(os.path.realpath, site.getsitepackages([sys.base_prefix]))
                     if path in hidden), None)  # fmt: skip
    return {"binds": binds, "symlinks": symlinks, "hidden": hidden, "site_dir": site_dir}


@functools.cache
def _distributions_by_package() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def _package_files(name: str) -> tuple[str, ...]:
    """Host paths an allowed package needs: its folder or module, and what its distribution put beside it.

    Beside it means the top-level entries of its installed files (``numpy.libs`` with the shared
    libraries numpy links, ``*.dist-info`` for ``importlib.metadata``), never ``__pycache__`` (other
    packages' bytecode) or ``.pth`` files. A standard-library or built-in module needs nothing.

    Raises:
        ValueError: ``name`` is not a top-level import name, or is not installed for this interpreter.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"allowed_packages: {name!r} is not a top-level import name (such as 'numpy')")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ValueError(f"allowed_packages: {name!r} is not installed for {sys.executable}")
    locations = list(spec.submodule_search_locations or []) or ([spec.origin] if spec.has_location else [])
    stdlib = [os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")]
    files = [path for path in map(os.path.realpath, locations)
             if not any(_inside(path, folder) for folder in stdlib) or _in_package_folder(path)]  # fmt: skip
    if not files:
        return ()  # the standard library is always in view
    for distribution_name in _distributions_by_package().get(name, []):
        distribution = importlib.metadata.distribution(distribution_name)
        installed_in = Path(distribution.locate_file("")).resolve()
        tops = {file.parts[0] for file in distribution.files or [] if file.parts}
        files += [str(installed_in / top) for top in sorted(tops)
                  if top not in ("..", "__pycache__") and not top.endswith(".pth") and (installed_in / top).exists()]  # fmt: skip
    return tuple(dict.fromkeys(files))


def _in_package_folder(path: str) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in Path(path).parts)


def _view(allowed_packages: tuple[str, ...]) -> dict:
    """The filesystem the program sees, with ``allowed_packages`` bound into the interpreter's site folder."""
    view = _system_view()
    packages: dict[str, str] = {}
    for name in allowed_packages:
        for path in _package_files(name):
            if view["site_dir"] is None:
                raise ValueError(f"allowed_packages: {_interpreter()[0]} has no site-packages folder to hold {name!r}")
            target = os.path.join(view["site_dir"], os.path.basename(path))
            if packages.get(target, path) != path:
                raise ValueError(f"allowed_packages: {packages[target]} and {path} would both be {target}")
            packages[target] = path
    return {**view, "packages": [[path, target] for target, path in packages.items()]}


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
                                on_output_limit="kill", view=_view(()), pass_fds=()).finish()  # fmt: skip
                problem = None if probe.stdout.strip() == "sandbox-ok" else f"probe failed: {probe}"
            except SandboxUnavailableError as error:
                problem = str(error)
            _isolation_checked[mode] = problem
    problem = _isolation_checked[mode]
    if problem is not None:
        namespaces = "user, " if mode == "userns" else ""
        raise SandboxUnavailableError(
            f"cannot isolate untrusted code on this machine: tried {mode} mode (`unshare` with {namespaces}net, "
            f"mount, pid, ipc and uts namespaces, a new root with {', '.join(b for b, _ in _system_view()['binds'])} "
            f"bound read-only, running {_interpreter()[0]}): {problem}"
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
        view = _view(tuple(allowed_packages))
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
            _write_all(program_fd, program.encode() if isinstance(program, str) else program)
            workdir = self.host_workdir or _NAMESPACE_WORKDIR
            # Unsandboxed, everything is in view anyway: the caller's own interpreter, with its packages.
            python = sys.executable if mode == "none" else _interpreter()[0]
            # What counts the run's CPU time where a cgroup applies (see _sandbox_init.RunCpuClock).
            cpu_usage_file = self.cgroup.cpu_usage_file if self.cgroup else None
            config = {
                "mode": mode,
                "program_fd": program_fd,
                "init_dir_fd": init_dir_fd,
                "status_fd": status_write,
                "workdir": workdir,
                "python": python,
                "view": view,
                "cgroups": [str(path) for path in self.cgroup.paths] if self.cgroup else [],
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
            _write_all(config_fd, json.dumps(config).encode())
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
            stdout, stderr, timed_out, truncated = _supervise(
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


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to the memfd ``fd`` and rewind it for the reader."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)


def _supervise(
    process: subprocess.Popen, stdin: bytes, deadline: float, max_output_bytes: int, kill_on_output_limit: bool,
    stop_fd: int | None = None,
) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin, collect stdout/stderr; kill the sandbox at the wall-clock deadline, output limit or stop.

    Past ``max_output_bytes`` the program is killed, or (``kill_on_output_limit`` False) what it
    writes is read and dropped, so it never blocks on a full pipe and still ends at the deadline.

    Returns:
        tuple[bytes, bytes, bool, bool]: stdout, stderr, timed_out, output_truncated.
    """
    outputs = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
    selector = selectors.DefaultSelector()
    for fd in outputs:
        selector.register(fd, selectors.EVENT_READ)
    if stop_fd is not None:
        selector.register(stop_fd, selectors.EVENT_READ)
    if stdin:
        os.set_blocking(process.stdin.fileno(), False)
        selector.register(process.stdin.fileno(), selectors.EVENT_WRITE)
    else:
        process.stdin.close()
    stdin_offset, open_outputs, total = 0, len(outputs), 0
    timed_out = truncated = stopped = False
    try:
        while open_outputs and not stopped:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(remaining):
                if key.fd == stop_fd:
                    stopped = True
                    break
                if key.fd not in outputs:
                    try:
                        stdin_offset += os.write(key.fd, stdin[stdin_offset : stdin_offset + 65536])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        stdin_offset = len(stdin)  # the program stopped reading; not an error
                    if stdin_offset >= len(stdin):
                        selector.unregister(key.fd)
                        process.stdin.close()
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    open_outputs -= 1
                    continue
                room = max_output_bytes - total
                outputs[key.fd] += chunk[: max(room, 0)]
                total += len(chunk)
                if total > max_output_bytes:
                    truncated = True
                    if kill_on_output_limit:
                        open_outputs = 0
                        break
            if time.monotonic() >= deadline and open_outputs:
                timed_out = True  # a steady flood keeps select() busy; the deadline still holds
                break
    finally:
        selector.close()
        killing = timed_out or (truncated and kill_on_output_limit) or stopped
        if killing:
            # Nobody reads the pipes from here on: close them, or a writer blocked on a full pipe (the
            # program, or unshare reporting its child's death) holds up the kill.
            for stream in (process.stdin, process.stdout, process.stderr):
                stream.close()
        _wait_or_kill(process, time.monotonic() if killing else deadline)
        for stream in (process.stdin, process.stdout, process.stderr):
            if not stream.closed:
                stream.close()
    stdout, stderr = (bytes(buffer) for buffer in outputs.values())
    return stdout, stderr, timed_out, truncated


def _wait_or_kill(process: subprocess.Popen, deadline: float) -> None:
    """Give the process until ``deadline`` to exit, then kill the sandbox and reap it."""
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
        return
    except subprocess.TimeoutExpired:
        pass
    # Kill the sandbox's pid 1 first: the kernel then kills everything in its pid namespace, and
    # unshare exits only once they are all reaped, so no sandboxed process outlives this call.
    for child in _child_pids(process.pid):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (empty if the kernel does not expose them)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
