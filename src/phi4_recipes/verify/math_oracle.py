"""Math answer equivalence: extract the final answer, then compare with math-verify in worker processes.

``MathVerifierPool`` keeps a few long-lived worker processes (importing sympy costs ~1 s, so
they are reused) and hands each comparison to an idle one. A comparison that outlives its
timeout counts as "not equal"; its worker is killed and replaced. Safe to call from many threads.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from phi4_recipes.verify.answers import extract_final_answer, reference_answer

_WORKER_SCRIPT = Path(__file__).with_name("_math_worker.py")
# Importing math-verify (sympy, antlr) in a fresh process; generous because CI cores are shared.
_WORKER_STARTUP_TIMEOUT_S = 120.0


class _MathWorker:
    """One math-verify child process and its request/reply pipes. Not thread-safe; the pool serialises use."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(_WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            start_new_session=True,  # a Ctrl-C in the terminal should reach the parent, not kill workers mid-reply
        )
        self._pending = b""
        if self._read_reply(_WORKER_STARTUP_TIMEOUT_S) != {"ready": True}:
            self.kill()
            raise RuntimeError(f"math-verify worker did not start; run {_WORKER_SCRIPT} by hand to see why")

    def _read_reply(self, timeout: float) -> dict | None:
        """Return the next JSON line from the worker, or None on timeout or worker death."""
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([stdout], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return json.loads(line)

    def compare(self, prediction: str, reference: str, timeout: float) -> dict | None:
        """Ask the worker whether two extracted answers are equal; None if it hung or died."""
        # math-verify's alarm (whole seconds, per parse and per verify) usually stops a slow
        # comparison cheaply; the hard deadline catches C-level hangs the alarm cannot interrupt.
        request = {"prediction": prediction, "reference": reference, "timeout": max(1, int(timeout // 2))}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
        except (BrokenPipeError, OSError):
            return None
        return self._read_reply(timeout)

    def kill(self) -> None:
        """Kill the worker's process group and reap it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


class MathVerifierPool:
    """A reusable, thread-safe pool of math-verify worker processes with per-item timeouts.

    Args:
        num_workers (int): worker processes to keep; started lazily, one per concurrent caller.
        timeout (float): default seconds allowed for one comparison before it counts as wrong.
    """

    def __init__(self, num_workers: int = 2, timeout: float = 5.0) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.num_workers = num_workers
        self.timeout = timeout
        self._idle: queue.Queue[_MathWorker | None] = queue.Queue()
        for _ in range(num_workers):
            self._idle.put(None)  # a free slot whose worker is started on first use
        self._workers: set[_MathWorker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0  # workers killed for hanging or dying; useful in logs and tests

    def equal_answers(self, prediction: str, reference: str, timeout: float | None = None) -> bool:
        """Compare two already-extracted answers (LaTeX or plain) for mathematical equality.

        Args:
            prediction (str): the model's answer, e.g. ``"\\frac{1}{2}"``.
            reference (str): the gold answer, e.g. ``"0.5"``.
            timeout (float | None): seconds before the comparison counts as wrong; pool default if None.

        Returns:
            bool: True when math-verify judges them equal within the timeout.
        """
        if self._closed:
            raise RuntimeError("MathVerifierPool is closed")
        timeout = self.timeout if timeout is None else timeout
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        worker = self._idle.get()
        try:
            if worker is None:
                worker = self._start_worker()
            reply = worker.compare(prediction, reference, timeout)
            if reply is None:
                self._retire(worker)
                worker = None
                return False
            return bool(reply["equal"])
        finally:
            self._idle.put(worker)

    def _start_worker(self) -> _MathWorker:
        worker = _MathWorker()
        with self._lock:
            self._workers.add(worker)
        return worker

    def _retire(self, worker: _MathWorker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)
            self.restarts += 1

    def close(self) -> None:
        """Kill all workers. Comparisons already running return False."""
        self._closed = True
        with self._lock:
            workers, self._workers = list(self._workers), set()
        for worker in workers:
            worker.kill()

    def __enter__(self) -> MathVerifierPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_default_pool: MathVerifierPool | None = None
_default_pool_lock = threading.Lock()


def default_pool() -> MathVerifierPool:
    """Return the process-wide pool ``math_equal`` uses, creating it on first call."""
    global _default_pool
    with _default_pool_lock:
        if _default_pool is None or _default_pool._closed:
            _default_pool = MathVerifierPool(num_workers=min(4, os.cpu_count() or 1))
            atexit.register(_default_pool.close)
        return _default_pool


def math_equal(
    prediction: str, reference: str, *, timeout: float | None = None, pool: MathVerifierPool | None = None
) -> bool:
    """Whether a completion's final answer equals the reference answer mathematically.

    The prediction's answer is its last ``\\boxed{}``, else the text after "answer is", else its
    last number; the reference's is its last ``\\boxed{}`` or the whole string. Comparison
    handles LaTeX, fractions, decimals, percentages, sets, intervals and equations.

    Args:
        prediction (str): a model completion (free text with the answer somewhere in it).
        reference (str): the gold answer or a worked solution ending in ``\\boxed{}``.
        timeout (float | None): seconds before the comparison counts as wrong.
        pool (MathVerifierPool | None): worker pool to use; the shared default if None.

    Returns:
        bool: False when no answer can be extracted, when they differ, or on timeout.
    """
    predicted = extract_final_answer(prediction)
    gold = reference_answer(reference)
    if predicted is None:
        return False
    if predicted.replace(" ", "") == gold.replace(" ", ""):
        return True  # identical strings need no sympy round trip
    return (pool or default_pool()).equal_answers(predicted, gold, timeout)


def math_equal_many(
    pairs: Iterable[tuple[str, str]], *, timeout: float | None = None, pool: MathVerifierPool | None = None
) -> list[bool]:
    """``math_equal`` over many (prediction, reference) pairs, using every worker in the pool.

    Args:
        pairs (Iterable[tuple[str, str]]): (completion, reference) pairs.
        timeout (float | None): per-pair timeout in seconds.
        pool (MathVerifierPool | None): worker pool; the shared default if None.

    Returns:
        list[bool]: one verdict per pair, in order.
    """
    pool = pool or default_pool()
    pairs = list(pairs)
    with ThreadPoolExecutor(max_workers=pool.num_workers) as executor:
        return list(
            executor.map(lambda pair: math_equal(pair[0], pair[1], timeout=timeout, pool=pool), pairs)
        )
