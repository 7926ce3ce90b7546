"""Math answer equivalence: extract the final answer, then compare with math-verify in worker processes.

``MathVerifierPool`` keeps a few long-lived worker processes (importing sympy costs ~1 s, so
they are reused) and hands each comparison to an idle one. A comparison that outlives its
timeout counts as "not equal"; its worker is killed and replaced. Safe to call from many threads.

Before any of that, ``math_verdict`` bounds what a completion can cost the host: a completion longer
than ``MAX_COMPLETION_CHARS`` is refused unread, an answer longer than ``MAX_ANSWER_CHARS`` never
reaches math-verify, and an answer that offers more than one value ("42 (or 43)") is wrong.
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

from phi4_recipes.verify.answers import extract_final_answer, multiple_value_markers, reference_answer
from phi4_recipes.verify.limits import MAX_ANSWER_CHARS, completion_too_long
from phi4_recipes.verify.verdict import Verdict

_WORKER_SCRIPT = Path(__file__).with_name("_math_worker.py")
# Importing math-verify (sympy, antlr) in a fresh process; generous because CI cores are shared.
_WORKER_STARTUP_TIMEOUT_S = 120.0
_QUOTE_CHARS = 80  # how much of an answer a verdict's reason quotes


def _printable(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, with non-printable ones escaped.

    Newlines, NUL and lone surrogates become escapes so that a reason is one line that any log or
    JSON writer can encode; LaTeX backslashes stay as written (``repr`` would double them).
    """
    cut = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[:limit])
    return cut + ("..." if len(text) > limit else "")


def _quote(answer: str) -> str:
    """An answer quoted for a reason, e.g. ``'42 (or 43)'``."""
    return f"'{_printable(answer, _QUOTE_CHARS)}'"


def _answer_too_long(prediction: str, reference: str) -> str | None:
    """Why two extracted answers are not handed to math-verify, or None when both are short enough."""
    for what, answer in (("the answer", prediction), ("the reference answer", reference)):
        if len(answer) > MAX_ANSWER_CHARS:
            return f"{what} is {len(answer)} characters; math-verify reads at most {MAX_ANSWER_CHARS}"
    return None


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
        try:
            reply = json.loads(line)
        except ValueError:
            return None  # a garbled reply means a broken worker; the pool replaces it
        return reply if isinstance(reply, dict) else None

    def compare(self, prediction: str, reference: str, timeout: float) -> dict | None:
        """Ask the worker whether two extracted answers are equal; None if it hung or died."""
        # math-verify's alarm (whole seconds, per parse and per verify) usually stops a slow
        # comparison cheaply; the hard deadline catches C-level hangs the alarm cannot interrupt.
        request = {"prediction": prediction, "reference": reference, "timeout": max(1, int(timeout // 2))}
        # json.dumps escapes every non-ASCII character (lone surrogates included), so this encodes.
        data = memoryview((json.dumps(request) + "\n").encode())
        try:
            while data:  # an unbuffered pipe may take a long request in pieces
                data = data[self.process.stdin.write(data) :]
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
        return self.compare_answers(prediction, reference, timeout).passed

    def compare_answers(self, prediction: str, reference: str, timeout: float | None = None) -> Verdict:
        """``equal_answers`` with the reason when they are not equal.

        Args:
            prediction (str): the model's answer.
            reference (str): the gold answer.
            timeout (float | None): seconds before the comparison counts as wrong; pool default if None.

        Returns:
            Verdict: passed when math-verify judges them equal within the timeout; an answer longer
            than ``MAX_ANSWER_CHARS`` fails without reaching a worker.
        """
        if self._closed:
            raise RuntimeError("MathVerifierPool is closed")
        timeout = self.timeout if timeout is None else timeout
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        too_long = _answer_too_long(prediction, reference)
        if too_long:
            return Verdict(False, too_long)
        worker = self._idle.get()
        try:
            if worker is None:
                worker = self._start_worker()
            reply = worker.compare(prediction, reference, timeout)
            if reply is None:
                died = worker.process.poll() is not None
                self._retire(worker)
                worker = None
                if died:
                    return Verdict(False, "the math-verify worker died")
                return Verdict(False, f"comparison timed out after {timeout:g} s")
            if reply.get("equal") is True:
                return Verdict(True)
            if reply.get("error"):
                return Verdict(False, f"math-verify failed: {_printable(str(reply['error']), 200)}")
            return Verdict(False, str(reply.get("reason") or "not equal to the reference"))
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


def math_verdict(
    prediction: str, reference: str, *, timeout: float | None = None, pool: MathVerifierPool | None = None
) -> Verdict:
    """Whether a completion's final answer equals the reference answer mathematically, and if not, why.

    The prediction's answer is its last ``\\boxed{}``, else the text after "answer is", else its
    last number; the reference's is its last ``\\boxed{}`` or the whole string. Comparison
    handles LaTeX, fractions, decimals, percentages, sets, intervals and equations. An answer that
    offers more than one value ("42 (or 43)", "1 to 100") is wrong unless the reference offers
    values the same way ("x = 1 \\text{ or } x = 2"). The verdict depends only on the extracted
    answer and the reference, so callers may cache it by ``extract_final_answer(prediction)``.

    Args:
        prediction (str): a model completion (free text with the answer somewhere in it).
        reference (str): the gold answer or a worked solution ending in ``\\boxed{}``.
        timeout (float | None): seconds before the comparison counts as wrong; the pool's if None.
        pool (MathVerifierPool | None): worker pool to use; the shared default if None.

    Returns:
        Verdict: failed with a reason when the completion is too long, has no answer, hedges,
        differs from the reference, or the comparison times out.

    Raises:
        TypeError: ``prediction`` or ``reference`` is not a str.
        ValueError: the reference answer is empty, or ``timeout`` is not positive.
    """
    if not isinstance(prediction, str):
        raise TypeError(f"expected the completion as str, got {type(prediction).__name__}")
    gold = reference_answer(reference)
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    too_long = completion_too_long(prediction)
    if too_long:
        return Verdict(False, too_long)
    predicted = extract_final_answer(prediction)
    if predicted is None:
        return Verdict(False, "no final answer found")
    if predicted.replace(" ", "") == gold.replace(" ", ""):
        return Verdict(True)  # identical strings need no sympy round trip (and hedge as the reference does)
    too_long = _answer_too_long(predicted, gold)  # before the marker regexes read them, too
    if too_long:
        return Verdict(False, too_long)
    if multiple_value_markers(predicted) - multiple_value_markers(gold):
        return Verdict(False, f"the answer offers more than one value: {_quote(predicted)}")
    return (pool or default_pool()).compare_answers(predicted, gold, timeout)


def math_equal(
    prediction: str, reference: str, *, timeout: float | None = None, pool: MathVerifierPool | None = None
) -> bool:
    """Whether a completion's final answer equals the reference answer mathematically.

    ``math_verdict`` without the reason; see it for the rules.

    Args:
        prediction (str): a model completion (free text with the answer somewhere in it).
        reference (str): the gold answer or a worked solution ending in ``\\boxed{}``.
        timeout (float | None): seconds before the comparison counts as wrong.
        pool (MathVerifierPool | None): worker pool to use; the shared default if None.

    Returns:
        bool: False when no answer can be extracted, when they differ, or on timeout.
    """
    return math_verdict(prediction, reference, timeout=timeout, pool=pool).passed


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
