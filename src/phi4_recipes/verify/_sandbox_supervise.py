"""Supervising a started sandbox from the host: its stdin fed, stdout and stderr read up to the output limit,
and the whole sandbox killed at the wall-clock deadline, the output limit or a stop request, with every
process of its pid namespace reaped before the result is returned."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from pathlib import Path


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to the memfd ``fd`` and rewind it for the reader."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)


def supervise(
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
    selector = _selector(process, outputs, bool(stdin), stop_fd)
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
        _end(process, deadline, killing=timed_out or (truncated and kill_on_output_limit) or stopped)
    stdout, stderr = (bytes(buffer) for buffer in outputs.values())
    return stdout, stderr, timed_out, truncated


def _selector(process: subprocess.Popen, outputs: dict, feed_stdin: bool, stop_fd: int | None):
    """A selector over the program's output pipes, the stop pipe and (when there is input) its stdin."""
    selector = selectors.DefaultSelector()
    for fd in outputs:
        selector.register(fd, selectors.EVENT_READ)
    if stop_fd is not None:
        selector.register(stop_fd, selectors.EVENT_READ)
    if feed_stdin:
        os.set_blocking(process.stdin.fileno(), False)
        selector.register(process.stdin.fileno(), selectors.EVENT_WRITE)
    else:
        process.stdin.close()
    return selector


def _end(process: subprocess.Popen, deadline: float, *, killing: bool) -> None:
    """Wait for the program until ``deadline`` (or kill it now, ``killing``), then close every pipe."""
    if killing:
        # Nobody reads the pipes from here on: close them, or a writer blocked on a full pipe (the
        # program, or unshare reporting its child's death) holds up the kill.
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    _wait_or_kill(process, time.monotonic() if killing else deadline)
    for stream in (process.stdin, process.stdout, process.stderr):
        if not stream.closed:
            stream.close()


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
