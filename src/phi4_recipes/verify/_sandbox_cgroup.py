"""Per-run cgroup limits for the sandbox: total memory and processes of one run, all its processes together.

RLIMIT_AS caps one process, so a run with 32 processes could use 32 times the memory limit, and
memory that is not mapped (a memfd or tmpfs file written with ``write``) counts against no
address space at all. A memory cgroup charges every page the run touches, whatever holds it. Two
kinds are tried, in order:

- cgroup v2: a directory this process may write with the ``memory`` and ``pids`` controllers
  enabled for its children: ``$PHI4_SANDBOX_CGROUP`` if set (for example a systemd
  ``Delegate=yes`` unit), else this process's own cgroup;
- cgroup v1 (hosts and CI containers without a v2 memory controller): a child of this process's
  own cgroup in the ``memory`` hierarchy (``memory.limit_in_bytes``, and ``memory.memsw.limit_in_bytes``
  so swap cannot extend it), plus one in the ``pids`` hierarchy where that one is writable too.
  Skipped when ``$PHI4_SANDBOX_CGROUP`` names a directory explicitly.

Where neither applies (an unprivileged caller, a read-only /sys/fs/cgroup), the sandbox lowers the
process limit and denies the memory RLIMIT_AS cannot see, and ``ExecResult.limits`` says which of
the three was in force.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ENV = "PHI4_SANDBOX_CGROUP"
_REQUIRED_CONTROLLERS = {"memory", "pids"}
_parent_cache: dict[str, tuple[str, tuple[Path, ...]] | None] = {}
_parent_lock = threading.Lock()


@dataclass(frozen=True)
class RunCgroup:
    """The cgroup(s) of one run.

    Attributes:
        kind (str): ``"cgroup v2"`` or ``"cgroup v1"``.
        paths (tuple[Path, ...]): directories the run's init process joins: one for v2; for v1 the
            memory cgroup first, then the pids cgroup when there is one.
    """

    kind: str
    paths: tuple[Path, ...]

    def peak_memory_bytes(self) -> int | None:
        """Most memory the run held at once (None where the kernel does not record it)."""
        name = "memory.peak" if self.kind == "cgroup v2" else "memory.max_usage_in_bytes"
        try:
            return int((self.paths[0] / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def remove(self) -> None:
        """Kill whatever is left in the run's cgroups and remove them."""
        for path in self.paths:
            _remove(path)


def _mountinfo() -> list[list[str]]:
    with open("/proc/self/mountinfo") as handle:
        return [line.split() for line in handle]


def _own_cgroup_v2() -> Path | None:
    mount_point = next((f[4] for f in _mountinfo() if f[f.index("-") + 1] == "cgroup2"), None)
    if mount_point is None:
        return None
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            if line.startswith("0::"):
                return Path(mount_point) / line[3:].strip().lstrip("/")
    return None


def _own_cgroup_v1(controller: str) -> Path | None:
    """This process's cgroup in the v1 hierarchy of ``controller``, as a path under its mount."""
    mount = None
    for fields in _mountinfo():
        separator = fields.index("-")
        if fields[separator + 1] == "cgroup" and controller in fields[separator + 3].split(","):
            mount = (fields[3], fields[4])  # root of the hierarchy shown there, mount point
            break
    if mount is None:
        return None
    mount_root, mount_point = mount
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                # Without a cgroup namespace a container sees its own cgroup as the mount's root.
                if mount_root != "/" and (path == mount_root or path.startswith(mount_root + "/")):
                    path = path[len(mount_root) :]
                return Path(mount_point) / path.lstrip("/")
    return None


def _probe_child(parent: Path) -> bool:
    probe = parent / f"phi4-probe-{uuid.uuid4().hex[:8]}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


def _usable_v2(parent: Path) -> bool:
    try:
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        if not _REQUIRED_CONTROLLERS <= enabled:
            (parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in _REQUIRED_CONTROLLERS))
    except OSError:
        return False
    return _probe_child(parent)


def _find_parents(explicit: str) -> tuple[str, tuple[Path, ...]] | None:
    if explicit:
        return ("cgroup v2", (Path(explicit),)) if _usable_v2(Path(explicit)) else None
    own = _own_cgroup_v2()
    if own is not None and _usable_v2(own):
        return "cgroup v2", (own,)
    memory = _own_cgroup_v1("memory")
    if memory is None or not (memory / "memory.limit_in_bytes").exists() or not _probe_child(memory):
        return None
    pids = _own_cgroup_v1("pids")
    return "cgroup v1", ((memory, pids) if pids is not None and _probe_child(pids) else (memory,))


def delegated_parents() -> tuple[str, tuple[Path, ...]] | None:
    """The kind and the parent directories under which per-run cgroups are made, or None (cached)."""
    key = os.environ.get(CGROUP_ENV, "")
    with _parent_lock:
        if key not in _parent_cache:
            _parent_cache[key] = _find_parents(key)
        return _parent_cache[key]


def create_run_cgroup(memory_mb: int, max_processes: int) -> RunCgroup | None:
    """Fresh cgroup(s) capping one run's total memory (no swap) and process count; None if unavailable."""
    found = delegated_parents()
    if found is None:
        return None
    kind, parents = found
    name = f"phi4-sandbox-{uuid.uuid4().hex}"
    run = RunCgroup(kind, tuple(parent / name for parent in parents))
    limit = str(memory_mb * 2**20)
    try:
        for path in run.paths:
            path.mkdir()
        if kind == "cgroup v2":
            (run.paths[0] / "memory.max").write_text(limit)
            if (run.paths[0] / "memory.swap.max").exists():
                (run.paths[0] / "memory.swap.max").write_text("0")
            (run.paths[0] / "pids.max").write_text(str(max_processes))
        else:
            (run.paths[0] / "memory.limit_in_bytes").write_text(limit)
            if (run.paths[0] / "memory.memsw.limit_in_bytes").exists():  # memory + swap; at least the above
                (run.paths[0] / "memory.memsw.limit_in_bytes").write_text(limit)
            if len(run.paths) > 1:
                (run.paths[1] / "pids.max").write_text(str(max_processes))
    except OSError:
        run.remove()
        return None
    return run


def _remove(path: Path) -> None:
    for attempt in range(200):  # the kernel frees the cgroup a moment after its last process is reaped
        if attempt % 50 == 0:
            _kill_members(path)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)


def _kill_members(path: Path) -> None:
    try:
        if (path / "cgroup.kill").exists():
            (path / "cgroup.kill").write_text("1")
            return
        # cgroup v1 has no cgroup.kill: whatever is still a member is killed one by one.
        for pid in (path / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
    except (OSError, ValueError):
        pass
