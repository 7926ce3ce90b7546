"""How many CPU threads torch uses in this process: `--threads N`, `PHI4_THREADS=N`, or a share of the free CPUs.

torch starts one intra-op thread per core of the machine, whatever else runs there. Two runs side by side on
2 cores then put 4 spinning OpenMP threads on 2 cores, and each run's SFT steps get 5-12x slower (issue 35;
bench/RESULTS.md, "Issue 35, CPU threads"). Every stage script calls `configure_threads()` first.

The count, first that applies:
1. `--threads N` on the command line (taken out of sys.argv before the recipe parser sees it);
2. the `PHI4_THREADS` environment variable;
3. `OMP_NUM_THREADS`, when the caller set it (run_pipeline's `threads:`, accelerate, a test): torch already
   honours it, and so do we;
4. otherwise, of the CPUs this process may run on (`os.sched_getaffinity`, not os.cpu_count(): a container or
   `taskset` may give it fewer), the smaller of their share per run of this repo registered on them (this one
   included) and the number other processes do not keep busy now; at least 1. "Busy now" is the median count of other runnable processes
   in /proc/loadavg over a quarter second, scaled to this process's share of the machine's CPUs: the 1-minute
   load average lags by a minute, so a stage that follows another would count its predecessor. A run registers
   itself by holding a lock file named after its CPU set (runs pinned to disjoint CPUs do not divide), and the
   lock goes with the process, so a crashed run never counts. A run started beside one already running takes
   what is left; the earlier run keeps its count, so give side-by-side runs `--threads` when it matters.
   The count decides the order in which floats are summed: runs that must reproduce each other fix it (1-3).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ENV = "PHI4_THREADS"
_held: list = []  # this process's lock file, open for as long as the process lives


def usable_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity), or all of them where the platform cannot say."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def parse_count(value: str, where: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{where}={value!r}: the number of CPU threads must be a whole number >= 1 (set it with "
                         f"--threads N or {ENV}=N)")
    return count


def pop_threads_flag(argv: list[str]) -> str | None:
    """Remove `--threads N` / `--threads=N` from argv (in place) and return N, or None when absent."""
    for i, arg in enumerate(argv):
        if arg == "--threads":
            if i + 1 >= len(argv):
                raise ValueError(f"--threads needs a value (or set {ENV})")
            value = argv[i + 1]
            del argv[i:i + 2]
            return value
        if arg.startswith("--threads="):
            del argv[i]
            return arg.split("=", 1)[1]
    return None


def runs_sharing(cpus: set[int], lock_dir: Path | None = None) -> int:
    """Register this process on `cpus` (once) and count the live processes registered there, itself included."""
    lock_dir = lock_dir or Path(tempfile.gettempdir()) / f"phi4-threads-{os.getuid()}"
    key = hashlib.sha1(",".join(map(str, sorted(cpus))).encode()).hexdigest()[:12]
    folder = lock_dir / key
    folder.mkdir(parents=True, exist_ok=True)
    if not _held or Path(_held[0].name).parent != folder:
        handle = open(folder / f"{os.getpid()}.lock", "w")  # noqa: SIM115 - held until the process exits
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _held[:] = [handle]
    live = 0
    for path in folder.glob("*.lock"):
        if path.name == Path(_held[0].name).name:
            live += 1
            continue
        try:
            with open(path) as other:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # got it: its process is gone
                path.unlink(missing_ok=True)
        except BlockingIOError:
            live += 1
        except FileNotFoundError:
            pass
    return live


def others_running(samples: int = 5, interval: float = 0.05) -> float:
    """Runnable processes other than this one, the median of a few reads of /proc/loadavg (0 where there is none)."""
    path = Path("/proc/loadavg")
    if not path.is_file():
        return 0.0
    counts = []
    for i in range(samples):
        counts.append(int(path.read_text().split()[3].split("/")[0]) - 1)  # "running/total"; minus this process
        if i + 1 < samples:
            time.sleep(interval)
    return max(0.0, statistics.median(counts))


def choose_threads(flag: str | None, environ: dict[str, str] | None = None, cpus: set[int] | None = None,
                   lock_dir: Path | None = None, busy: float | None = None) -> tuple[int, str]:
    """The thread count and where it came from (the rule in the module docstring)."""
    environ = os.environ if environ is None else environ
    if flag is not None:
        return parse_count(flag, "--threads"), "--threads"
    if environ.get(ENV):
        return parse_count(environ[ENV], ENV), ENV
    if environ.get("OMP_NUM_THREADS"):
        return parse_count(environ["OMP_NUM_THREADS"], "OMP_NUM_THREADS"), "OMP_NUM_THREADS"
    cpus = usable_cpus() if cpus is None else cpus
    runs = runs_sharing(cpus, lock_dir)
    busy = others_running() * len(cpus) / (os.cpu_count() or len(cpus)) if busy is None else busy
    free = len(cpus) - round(busy)
    return max(1, min(len(cpus) // runs, free)), f"{len(cpus)} usable CPUs, {busy:.0f} busy, {runs} runs"


def configure_threads(argv: list[str] | None = None) -> int:
    """Pick the count (taking `--threads` out of argv, sys.argv by default) and give it to torch; child
    processes inherit it through OMP_NUM_THREADS. Returns the count."""
    import torch

    argv = sys.argv if argv is None else argv
    try:
        count, source = choose_threads(pop_threads_flag(argv))
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    torch.set_num_threads(count)
    os.environ["OMP_NUM_THREADS"] = str(count)
    print(f"torch threads: {count} ({source})", file=sys.stderr)
    return count
