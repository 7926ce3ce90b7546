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
  so swap cannot extend it), plus one in the ``pids`` and in the ``cpuacct`` hierarchy where those
  are writable too. Skipped when ``$PHI4_SANDBOX_CGROUP`` names a directory explicitly.

The cgroup also counts the CPU time of every process that was ever in it (v2 ``cpu.stat``, v1
``cpuacct.usage``). Adding up the processes in /proc misses a child that the kernel reaped by itself
(its parent ignores SIGCHLD): its CPU time lands in no parent's, so a program could fork such
children forever within a CPU budget. The sandbox's init reads this counter instead where there is one.

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
            memory cgroup first, then the pids and cpuacct cgroups when there are.
        cpu_usage_file (Path | None): the file that counts the CPU time of everything ever in the run's
            cgroup (``cpu.stat`` for v2, ``cpuacct.usage`` for v1); None without a cpuacct hierarchy.
    """

    kind: str
    paths: tuple[Path, ...]
    cpu_usage_file: Path | None = None

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


def _find_parents(explicit: str) -> tuple[str, dict[str, Path]] | None:
    if explicit:
        return ("cgroup v2", {"unified": Path(explicit)}) if _usable_v2(Path(explicit)) else None
    own = _own_cgroup_v2()
    if own is not None and _usable_v2(own):
        return "cgroup v2", {"unified": own}
    memory = _own_cgroup_v1("memory")
    if memory is None or not (memory / "memory.limit_in_bytes").exists() or not _probe_child(memory):
        return None
    parents = {"memory": memory}
    for controller in ("pids", "cpuacct"):
        parent = _own_cgroup_v1(controller)
        if parent is not None and (parent in parents.values() or _probe_child(parent)):
            parents[controller] = parent
    return "cgroup v1", parents


def delegated_parents() -> tuple[str, dict[str, Path]] | None:
    """The kind and, by controller (``"unified"`` for v2), the folders per-run cgroups go under; None if none.

    Cached per value of ``$PHI4_SANDBOX_CGROUP``. For v1, controllers mounted together share one folder.
    """
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
    folders = {controller: parent / name for controller, parent in parents.items()}
    limit = str(memory_mb * 2**20)
    if kind == "cgroup v2":
        cpu_usage_file = folders["unified"] / "cpu.stat"  # a core file: there without the cpu controller
    else:
        cpu_usage_file = folders["cpuacct"] / "cpuacct.usage" if "cpuacct" in folders else None
    run = RunCgroup(kind, tuple(dict.fromkeys(folders.values())), cpu_usage_file)
    try:
        for path in run.paths:
            path.mkdir()
        if kind == "cgroup v2":
            unified = folders["unified"]
            (unified / "memory.max").write_text(limit)
            if (unified / "memory.swap.max").exists():
                (unified / "memory.swap.max").write_text("0")
            (unified / "pids.max").write_text(str(max_processes))
        else:
            memory = folders["memory"]
            (memory / "memory.limit_in_bytes").write_text(limit)
            if (memory / "memory.memsw.limit_in_bytes").exists():  # memory + swap; at least the above
                (memory / "memory.memsw.limit_in_bytes").write_text(limit)
            if "pids" in folders:
                (folders["pids"] / "pids.max").write_text(str(max_processes))
    except OSError:
        run.remove()
        return None
    if run.cpu_usage_file is not None and not run.cpu_usage_file.exists():
        run = RunCgroup(kind, run.paths, None)
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
