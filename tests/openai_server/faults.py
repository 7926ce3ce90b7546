"""Planned failures a server answers with, so clients' retry paths are tested against real sockets."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

# "429" / "500" / "503": answer with that status; "drop": read the request, then close the socket
# without a response; "stall:<seconds>": wait that long, then answer normally (client time-outs).
FAULT_KINDS = ("429", "500", "503", "drop", "stall")


@dataclass(frozen=True)
class Fault:
    """One planned failure; `seconds` is only used by "stall"."""

    kind: str
    seconds: float = 0.0

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """'429' -> Fault('429'); 'stall:0.5' -> Fault('stall', 0.5)."""
        kind, _, arg = spec.partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {spec!r}; expected one of {FAULT_KINDS} (stall as 'stall:SECONDS')")
        return cls(kind, float(arg) if kind == "stall" else 0.0)


class FaultPlan:
    """A thread-safe queue of faults; each generation request takes the next one (or none when empty).

    Also counts requests and the most that were in flight at once, which tests read to check that a
    client really retried and really kept to its concurrency limit.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: deque[Fault] = deque()
        self.requests_seen = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def add(self, *specs: str) -> None:
        faults = [Fault.parse(s) for s in specs]
        with self._lock:
            self._pending.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self.requests_seen = self.in_flight = self.max_in_flight = 0

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def begin_request(self) -> Fault | None:
        """Count a generation request in and return the fault it must suffer, if any."""
        with self._lock:
            self.requests_seen += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._pending.popleft() if self._pending else None

    def end_request(self) -> None:
        with self._lock:
            self.in_flight -= 1
