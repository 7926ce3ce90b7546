"""Run untrusted, model-written Python in a throwaway sandbox and capture what it did.

Isolation uses ``unshare`` (util-linux) and the kernel, nothing else:

- new network namespace (only a loopback that is down: no network at all), mount, pid, ipc
  and uts namespaces; as a non-root caller, a user namespace as well;
- every mount read-only; private size-capped tmpfs on /tmp, /var/tmp, /dev/shm; a fresh /proc;
  the program runs in its own directory on that tmpfs, which vanishes with the run. The
  interpreter is bound back read-only wherever it lives (a venv under /tmp, pyenv in a 0700 home);
- a seccomp filter: no sockets of any family, no nested namespaces, no kernel keyrings (and a
  fresh, empty session keyring);
- rlimits on CPU time, address space, processes (per run: as host root the program gets its own
  unprivileged uid), file size and open files; a per-run cgroup v2 cap on total memory and
  processes where one can be made (``_sandbox_cgroup``), else a lower process limit; no
  capabilities, ``no_new_privs``;
- a minimal environment (no secrets from the caller's environment);
- a wall-clock deadline that SIGKILLs the whole process group, also when the program floods its
  output; when the sandbox's pid 1 exits, the kernel kills everything left in its pid namespace.

If the namespaces cannot be created, ``run_python`` raises ``SandboxUnavailableError`` instead of
running the code unprotected, unless the caller passes ``allow_unsandboxed=True``.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import selectors
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

from phi4_recipes.verify._sandbox_cgroup import create_run_cgroup, remove_run_cgroup

_INIT_SCRIPT = Path(__file__).with_name("_sandbox_init.py")
_NAMESPACE_WORKDIR = "/tmp/sandbox"
_SCRATCH_MB = 64
# The program is written into the scratch tmpfs; past half of it, it would crowd out the files it writes.
MAX_PROGRAM_BYTES = _SCRATCH_MB * 2**20 // 2
# Without a cgroup, only RLIMIT_AS (per process) bounds memory, so fewer processes bound the total.
FALLBACK_MAX_PROCESSES = 8
_MAX_TIMEOUT_S = 24 * 3600.0
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
        ok (bool): exited with status 0, within time, within the output limit.
        exit_code (int | None): exit status; ``-N`` if killed by signal N; None if the sandbox killed it
            (wall-clock time-out, output limit, ``stop()``) or its init process vanished.
        stdout (str): captured standard output (UTF-8, invalid bytes replaced), at most ``max_output_bytes``.
        stderr (str): captured standard error, same limits.
        timed_out (bool): hit the wall-clock deadline or the CPU-time limit.
        output_truncated (bool): wrote more than ``max_output_bytes`` and was killed for it.
        duration_s (float): wall-clock seconds, sandbox setup included.
        limits (str): what bounded total memory: ``"cgroup"`` (a per-run cgroup v2 capped the whole
            run's memory and processes) or ``"rlimit"`` (per-process address space, fewer processes).
    """

    ok: bool
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    output_truncated: bool = False
    duration_s: float = 0.0
    limits: str = "rlimit"


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


def _interpreter_paths() -> list[str]:
    """What the sandboxed interpreter needs in view: its venv (if any), its base install, the binary itself."""
    return sorted({os.path.realpath(p) for p in (sys.executable, sys.prefix, sys.base_prefix)})


_isolation_checked: dict[str, str | None] = {}
_isolation_lock = threading.Lock()


def check_isolation() -> None:
    """Raise ``SandboxUnavailableError`` (with the reason) unless sandboxed runs work here; cached per process."""
    mode = isolation_mode()
    with _isolation_lock:
        if mode not in _isolation_checked:
            try:
                probe = _Launch(mode, "print('sandbox-ok')", stdin="", timeout=30.0, memory_mb=256, max_processes=8,
                                file_size_mb=1, max_output_bytes=4096, pass_fds=()).finish()  # fmt: skip
                problem = None if probe.stdout.strip() == "sandbox-ok" else f"probe failed: {probe}"
            except SandboxUnavailableError as error:
                problem = str(error)
            _isolation_checked[mode] = problem
    problem = _isolation_checked[mode]
    if problem is not None:
        namespaces = "user, " if mode == "userns" else ""
        raise SandboxUnavailableError(
            f"cannot isolate untrusted code on this machine: tried {mode} mode (`unshare` with {namespaces}net, "
            f"mount, pid, ipc and uts namespaces, running {sys.executable} with {', '.join(_interpreter_paths())} "
            f"bound read-only): {problem}"
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
    lowest = {"timeout": 0.01, "memory_mb": 32, "max_processes": 2, "file_size_mb": 0, "max_output_bytes": 1}
    for name, value in limits.items():
        integral = name != "timeout"
        if isinstance(value, bool) or not isinstance(value, int if integral else int | float):
            raise ValueError(f"{name} must be {'an int' if integral else 'a number'}, got {value!r}")
        if not (value >= lowest[name] and math.isfinite(value)):
            raise ValueError(f"{name} must be finite and >= {lowest[name]}, got {value}")
    if limits["timeout"] > _MAX_TIMEOUT_S:
        raise ValueError(f"timeout must be at most {_MAX_TIMEOUT_S:.0f} s, got {limits['timeout']}")


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
    memory_mb: int = 512,
    max_processes: int = 32,
    file_size_mb: int = 16,
    max_output_bytes: int = 1 << 20,
    allow_unsandboxed: bool = False,
) -> ExecResult:
    """Run Python source in a sandbox with no network, a private scratch directory and resource limits.

    Args:
        code (str): the program, run as ``python -I main.py`` in its own empty directory; at most
            ``MAX_PROGRAM_BYTES`` once encoded as UTF-8.
        stdin (str): text fed to the program's standard input.
        timeout (float): wall-clock seconds before the whole sandbox is killed; also the CPU-time limit.
        memory_mb (int): address-space limit per process, and total memory of the run where a
            cgroup applies, in MiB.
        max_processes (int): processes and threads the program may have at once (RLIMIT_NPROC, and
            the cgroup's pids.max); at most ``FALLBACK_MAX_PROCESSES`` where no cgroup applies.
        file_size_mb (int): largest file the program may write, in MiB.
        max_output_bytes (int): stdout + stderr bytes kept; more kills the program (``output_truncated``).
        allow_unsandboxed (bool): if isolation is unavailable, run with rlimits and seccomp only (and,
            as root, an unprivileged uid) instead of raising. Never the default: the caller's files
            stay reachable.

    Returns:
        ExecResult: exit status, captured output and what stopped the program.

    Raises:
        SandboxUnavailableError: isolation is unavailable and ``allow_unsandboxed`` is False.
        ValueError: a limit is out of range or not finite, the code or stdin holds a lone surrogate,
            or the code is larger than ``MAX_PROGRAM_BYTES``.
    """
    launch = _prepare(code, stdin, timeout, memory_mb, max_processes, file_size_mb, max_output_bytes,
                      allow_unsandboxed, ())  # fmt: skip
    return launch.finish()


# run_python's keyword arguments and defaults, in _prepare's order; start_python takes the same.
_RUN_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(run_python).parameters.items()
                 if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def _prepare(code, stdin, timeout, memory_mb, max_processes, file_size_mb, max_output_bytes, allow_unsandboxed,
             pass_fds) -> _Launch:  # fmt: skip
    """Validate the arguments, check isolation, and start the sandbox."""
    program, stdin_bytes = _encode_text("code", code), _encode_text("stdin", stdin)
    if len(program) > MAX_PROGRAM_BYTES:
        raise ValueError(f"code is {len(program)} bytes; the sandbox runs programs of at most {MAX_PROGRAM_BYTES}")
    _check_limits(timeout=timeout, memory_mb=memory_mb, max_processes=max_processes, file_size_mb=file_size_mb,
                  max_output_bytes=max_output_bytes)  # fmt: skip
    limits = dict(timeout=float(timeout), memory_mb=memory_mb, max_processes=max_processes, file_size_mb=file_size_mb,
                  max_output_bytes=max_output_bytes, pass_fds=tuple(pass_fds))  # fmt: skip
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

    def __init__(self, mode: str, program: str | bytes, *, stdin: str | bytes, timeout: float, memory_mb: int,
                 max_processes: int, file_size_mb: int, max_output_bytes: int, pass_fds: tuple[int, ...]):  # fmt: skip
        self.started = time.monotonic()
        self.deadline = self.started + timeout
        self.stdin = stdin.encode() if isinstance(stdin, str) else stdin
        self.max_output_bytes = max_output_bytes
        self.host_workdir = tempfile.mkdtemp(prefix="phi4-sandbox-") if mode == "none" else None
        self.cgroup = create_run_cgroup(memory_mb, max_processes + 1) if mode != "none" else None  # +1: init
        if self.cgroup is None:
            max_processes = min(max_processes, FALLBACK_MAX_PROCESSES)
        program_fd = os.memfd_create("sandbox-program")
        self.status_read, status_write = os.pipe()
        try:
            os.write(program_fd, program.encode() if isinstance(program, str) else program)
            os.lseek(program_fd, 0, os.SEEK_SET)
            workdir = self.host_workdir or _NAMESPACE_WORKDIR
            config = {
                "mode": mode,
                "program_fd": program_fd,
                "status_fd": status_write,
                "workdir": workdir,
                "python": sys.executable,
                "expose": _interpreter_paths(),
                "cgroup": str(self.cgroup) if self.cgroup else None,
                "env": {**_PROGRAM_ENV, "HOME": workdir, "TMPDIR": workdir},
                "cpu_seconds": max(1, math.ceil(timeout)),
                "wall_seconds": timeout,
                "memory_mb": memory_mb,
                # The sandbox's pid 1 shares the program's uid in user-namespace mode and counts against it.
                "max_processes": max_processes + (1 if mode == "userns" else 0),
                "file_size_mb": file_size_mb,
                "max_open_files": 256,
                "scratch_mb": _SCRATCH_MB,
            }
            prefix = [] if mode == "none" else _unshare_prefix(mode)
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-I", "-S", str(_INIT_SCRIPT), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(program_fd, status_write, *pass_fds),
                env={"PATH": _PROGRAM_ENV["PATH"], "LANG": "C.UTF-8"},
                cwd="/",
                start_new_session=True,  # one process group to kill at the deadline
            )
        except BaseException:
            os.close(self.status_read)
            self._cleanup()
            raise
        finally:
            for fd in (program_fd, status_write, *pass_fds):
                os.close(fd)

    def finish(self, stop_fd: int | None = None) -> ExecResult:
        """Supervise the run to its end (or until ``stop_fd`` becomes readable) and report it."""
        try:
            stdout, stderr, timed_out, truncated = _supervise(
                self.process, self.stdin, self.deadline, self.max_output_bytes, stop_fd
            )
            with os.fdopen(self.status_read, "rb") as status_file:
                status_text = status_file.read().decode() if not (timed_out or truncated) else ""
        finally:
            self._cleanup()
        status = json.loads(status_text) if status_text.strip() else {}
        if "setup_error" in status:
            raise SandboxUnavailableError(f"sandbox setup failed: {status['setup_error']}")
        stderr_text = stderr.decode(errors="replace")
        if not status and not (timed_out or truncated) and stderr_text.startswith("unshare:"):
            raise SandboxUnavailableError(stderr_text.strip())
        exit_code = status.get("exit_code")
        timed_out = timed_out or exit_code == -signal.SIGXCPU
        return ExecResult(
            ok=exit_code == 0 and not timed_out and not truncated,
            exit_code=exit_code,
            stdout=stdout.decode(errors="replace"),
            stderr=stderr_text,
            timed_out=timed_out,
            output_truncated=truncated,
            duration_s=time.monotonic() - self.started,
            limits="cgroup" if self.cgroup else "rlimit",
        )

    def _cleanup(self) -> None:
        if self.host_workdir:
            shutil.rmtree(self.host_workdir, ignore_errors=True)
        if self.cgroup:
            remove_run_cgroup(self.cgroup)


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


def _supervise(
    process: subprocess.Popen, stdin: bytes, deadline: float, max_output_bytes: int, stop_fd: int | None = None
) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin, collect stdout/stderr, and kill the process group at the deadline, output limit or stop.

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
                outputs[key.fd] += chunk
                total += len(chunk)
                if total > max_output_bytes:
                    truncated = True
                    open_outputs = 0
                    break
            if time.monotonic() >= deadline and open_outputs:
                timed_out = True  # a steady flood keeps select() busy; the deadline still holds
                break
    finally:
        selector.close()
        killing = timed_out or truncated or stopped
        if killing:
            # Nobody reads the pipes from here on: close them, or a writer blocked on a full pipe (the
            # program, or unshare reporting its child's death) holds up the kill.
            for stream in (process.stdin, process.stdout, process.stderr):
                stream.close()
        _wait_or_kill(process, time.monotonic() if killing else deadline)
        for stream in (process.stdin, process.stdout, process.stderr):
            if not stream.closed:
                stream.close()
    stdout, stderr = (bytes(buffer[:max_output_bytes]) for buffer in outputs.values())
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
