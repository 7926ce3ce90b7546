"""Per-run cgroup v2 limits for the sandbox: total memory and processes of one run, all its processes together.

RLIMIT_AS caps one process, so a run with 32 processes could use 32 times the memory limit. A cgroup
caps the sum. It needs a cgroup v2 directory this process may write, with the ``memory`` and
``pids`` controllers enabled for its children: ``$PHI4_SANDBOX_CGROUP`` if set (for example a
systemd ``Delegate=yes`` unit), else this process's own cgroup. Where there is none (cgroup v1,
a read-only /sys/fs/cgroup, controllers held by a parent), the sandbox lowers the process limit
instead, and ``ExecResult.limits`` says which of the two was in force.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

CGROUP_ENV = "PHI4_SANDBOX_CGROUP"
_REQUIRED_CONTROLLERS = {"memory", "pids"}
_parent_cache: dict[str, Path | None] = {}
_parent_lock = threading.Lock()


def _own_cgroup() -> Path | None:
    mount_point = None
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                mount_point = fields[4]
                break
    if mount_point is None:
        return None
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            if line.startswith("0::"):
                return Path(mount_point) / line[3:].strip().lstrip("/")
    return None


def _usable(parent: Path) -> bool:
    try:
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        if not _REQUIRED_CONTROLLERS <= enabled:
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in _REQUIRED_CONTROLLERS))
        probe = parent / f"phi4-probe-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


def delegated_parent() -> Path | None:
    """The cgroup under which per-run cgroups are made, or None where cgroup limits are unavailable (cached)."""
    key = os.environ.get(CGROUP_ENV, "")
    with _parent_lock:
        if key not in _parent_cache:
            candidate = Path(key) if key else _own_cgroup()
            _parent_cache[key] = candidate if candidate is not None and _usable(candidate) else None
        return _parent_cache[key]


def create_run_cgroup(memory_mb: int, max_processes: int) -> Path | None:
    """A fresh cgroup capping one run's total memory (no swap) and process count; None if unavailable."""
    parent = delegated_parent()
    if parent is None:
        return None
    path = parent / f"phi4-sandbox-{uuid.uuid4().hex}"
    try:
        path.mkdir()
        (path / "memory.max").write_text(str(memory_mb * 2**20))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
        (path / "pids.max").write_text(str(max_processes))
    except OSError:
        remove_run_cgroup(path)
        return None
    return path


def remove_run_cgroup(path: Path) -> None:
    """Kill whatever is left in the run's cgroup and remove it."""
    try:
        if (path / "cgroup.kill").exists():
            (path / "cgroup.kill").write_text("1")
    except OSError:
        pass
    for _ in range(50):  # the kernel frees the cgroup a moment after its last process is reaped
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)
