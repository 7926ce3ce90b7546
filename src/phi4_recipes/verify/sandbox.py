"""Run untrusted, model-written Python in a throwaway sandbox and capture what it did.

Isolation uses ``unshare`` (util-linux) and the kernel, nothing else:

- new network namespace (only a loopback that is down: no network at all), mount, pid, ipc
  and uts namespaces; as a non-root caller, a user namespace as well;
- every mount read-only; private size-capped tmpfs on /tmp, /var/tmp, /dev/shm; a fresh /proc;
  the program runs in its own directory on that tmpfs, which vanishes with the run;
- rlimits on CPU time, address space, processes (per run: as host root the program gets its own
  unprivileged uid), file size and open files; no capabilities, ``no_new_privs``;
- a minimal environment (no secrets from the caller's environment);
- a wall-clock deadline that SIGKILLs the whole process group; when the sandbox's pid 1 exits,
  the kernel kills everything left in its pid namespace.

If the namespaces cannot be created, ``run_python`` raises ``SandboxUnavailableError`` instead of
running the code unprotected, unless the caller passes ``allow_unsandboxed=True``.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

_INIT_SCRIPT = Path(__file__).with_name("_sandbox_init.py")
_NAMESPACE_WORKDIR = "/tmp/sandbox"
_SCRATCH_MB = 64
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
            (wall-clock time-out or output limit) or its init process vanished.
        stdout (str): captured standard output (UTF-8, invalid bytes replaced), at most ``max_output_bytes``.
        stderr (str): captured standard error, same limits.
        timed_out (bool): hit the wall-clock deadline or the CPU-time limit.
        output_truncated (bool): wrote more than ``max_output_bytes`` and was killed for it.
        duration_s (float): wall-clock seconds, sandbox setup included.
    """

    ok: bool
    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    output_truncated: bool = False
    duration_s: float = 0.0


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
                probe = _run(mode, "print('sandbox-ok')", stdin="", timeout=30.0, memory_mb=256, max_processes=8,
                             file_size_mb=1, max_output_bytes=4096)  # fmt: skip
                problem = None if probe.stdout.strip() == "sandbox-ok" else f"probe failed: {probe}"
            except SandboxUnavailableError as error:
                problem = str(error)
            _isolation_checked[mode] = problem
    problem = _isolation_checked[mode]
    if problem is not None:
        raise SandboxUnavailableError(
            f"cannot isolate untrusted code on this machine ({mode} mode): {problem}. Pass allow_unsandboxed=True "
            "only if you accept running model-written code without network/filesystem isolation."
        )


def sandbox_available() -> bool:
    """Whether ``run_python`` can isolate code here (without raising)."""
    try:
        check_isolation()
    except SandboxUnavailableError:
        return False
    return True


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
        code (str): the program, run as ``python -I main.py`` in its own empty directory.
        stdin (str): text fed to the program's standard input.
        timeout (float): wall-clock seconds before the whole sandbox is killed; also the CPU-time limit.
        memory_mb (int): address-space limit per process, in MiB.
        max_processes (int): processes and threads the program may have at once (RLIMIT_NPROC).
        file_size_mb (int): largest file the program may write, in MiB.
        max_output_bytes (int): stdout + stderr bytes kept; more kills the program (``output_truncated``).
        allow_unsandboxed (bool): if isolation is unavailable, run with rlimits only (and, as root, an
            unprivileged uid) instead of raising. Never the default: the network and the caller's
            files stay reachable.

    Returns:
        ExecResult: exit status, captured output and what stopped the program.

    Raises:
        SandboxUnavailableError: isolation is unavailable and ``allow_unsandboxed`` is False.
        ValueError: a limit is out of range.
    """
    if not isinstance(code, str) or not isinstance(stdin, str):
        raise TypeError("code and stdin must be str")
    for name, value, low in (("timeout", timeout, 0.01), ("memory_mb", memory_mb, 32), ("max_processes", max_processes, 2),
                             ("file_size_mb", file_size_mb, 0), ("max_output_bytes", max_output_bytes, 1)):  # fmt: skip
        if not value >= low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    limits = dict(timeout=timeout, memory_mb=memory_mb, max_processes=max_processes, file_size_mb=file_size_mb,
                  max_output_bytes=max_output_bytes)  # fmt: skip
    try:
        check_isolation()
    except SandboxUnavailableError:
        if not allow_unsandboxed:
            raise
        return _run("none", code, stdin=stdin, **limits)
    return _run(isolation_mode(), code, stdin=stdin, **limits)


def _run(
    mode: str,
    code: str,
    *,
    stdin: str,
    timeout: float,
    memory_mb: int,
    max_processes: int,
    file_size_mb: int,
    max_output_bytes: int,
) -> ExecResult:
    """Start the init script in ``mode`` and supervise it; see ``_sandbox_init`` for what happens inside."""
    started = time.monotonic()
    host_workdir = tempfile.mkdtemp(prefix="phi4-sandbox-") if mode == "none" else None
    program_fd = os.memfd_create("sandbox-program")
    status_read, status_write = os.pipe()
    try:
        os.write(program_fd, code.encode())
        os.lseek(program_fd, 0, os.SEEK_SET)
        config = {
            "mode": mode,
            "program_fd": program_fd,
            "status_fd": status_write,
            "workdir": host_workdir or _NAMESPACE_WORKDIR,
            "python": sys.executable,
            # The interpreter and its libraries, made reachable when they sit under a private directory.
            "expose": sorted({os.path.realpath(p) for p in (sys.executable, sys.prefix, sys.base_prefix)}),
            "env": {
                **_PROGRAM_ENV,
                "HOME": host_workdir or _NAMESPACE_WORKDIR,
                "TMPDIR": host_workdir or _NAMESPACE_WORKDIR,
            },
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
        command = [*prefix, sys.executable, "-I", "-S", str(_INIT_SCRIPT), json.dumps(config)]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(program_fd, status_write),
            env={"PATH": _PROGRAM_ENV["PATH"], "LANG": "C.UTF-8"},
            cwd="/",
            start_new_session=True,  # one process group to kill at the deadline
        )
        os.close(status_write)
        status_write = -1
        stdout, stderr, timed_out, truncated = _supervise(
            process, stdin.encode(), started + timeout, max_output_bytes
        )
        with os.fdopen(status_read, "rb") as status_file:
            status_read = -1
            status_text = status_file.read().decode() if not (timed_out or truncated) else ""
    finally:
        for fd in (program_fd, status_read, status_write):
            if fd >= 0:
                os.close(fd)
        if host_workdir:
            shutil.rmtree(host_workdir, ignore_errors=True)

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
        duration_s=time.monotonic() - started,
    )


def _supervise(
    process: subprocess.Popen, stdin: bytes, deadline: float, max_output_bytes: int
) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin, collect stdout/stderr, and kill the process group at the deadline or output limit.

    Returns:
        tuple[bytes, bytes, bool, bool]: stdout, stderr, timed_out, output_truncated.
    """
    outputs = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray()}
    selector = selectors.DefaultSelector()
    for fd in outputs:
        selector.register(fd, selectors.EVENT_READ)
    if stdin:
        os.set_blocking(process.stdin.fileno(), False)
        selector.register(process.stdin.fileno(), selectors.EVENT_WRITE)
    else:
        process.stdin.close()
    stdin_offset, open_outputs = 0, len(outputs)
    timed_out = truncated = False
    try:
        while open_outputs:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(remaining):
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
                if sum(len(buffer) for buffer in outputs.values()) > max_output_bytes:
                    truncated = True
                    open_outputs = 0
                    break
    finally:
        selector.close()
        _wait_or_kill(process, time.monotonic() if timed_out or truncated else deadline)
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
        process.wait(timeout=10.0)
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
