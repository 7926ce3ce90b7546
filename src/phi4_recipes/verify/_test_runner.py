"""The trusted side of the code oracle: run the tests, calling the solution only through a pipe.

``code_check`` runs this in its own sandbox, separate from the solution's: the two share no
interpreter, no memory and no files. The tests (and optional trusted setup code, such as
HumanEval's prompt with its helper functions) run here, with each candidate name bound to a
``Candidate`` proxy that sends the call to the solution process and decodes the reply with
``plain_data``. Return values are therefore builtins built here; every comparison in the tests
uses this side's ``==``. An exception the solution raised arrives as a ``SolutionError``, never as
an exception that steers control flow here (``StopIteration`` would end ``all(map(f, xs))`` as if
every item passed). Verdicts go to a private duplicate of stdout, exactly one JSON line per test;
the tests' own output goes to stderr.

Standard library and ``plain_data`` only; the sandboxed program defines both from source.
"""

import builtins
import json
import os
import traceback

from phi4_recipes.verify.plain_data import from_plain, to_plain

SOLUTION_GONE = "the solution's process ended before answering"
_MAX_ERROR = 500


class SolutionGone(Exception):
    """The solution process closed the channel (it crashed, exited or was killed)."""


class SolutionError(Exception):
    """The solution raised an exception, or sent a malformed reply.

    Raised as an ordinary ``Exception``: whatever the solution raised, a test sees an error, never
    the end of an iteration or an exit of this process.
    """


# Raised here, these would act as control flow rather than fail the test: StopIteration ends map(),
# filter(), all(), any() and iter(f, sentinel) as if the iteration were over.
_CONTROL_FLOW = (StopIteration, StopAsyncIteration)
_raised_types: dict = {}


def _raised_type(name: str):
    """The class that stands for the solution's builtin exception ``name`` here, or None.

    A subclass of both the builtin and ``SolutionError``, so a test that expects e.g. ValueError still
    catches it. None for names that are not ordinary builtin exceptions: BaseException-only types
    (SystemExit, KeyboardInterrupt, GeneratorExit) would stop this process, and control-flow ones
    (StopIteration) would end loops.
    """
    kind = getattr(builtins, name, None)
    if not (isinstance(kind, type) and issubclass(kind, Exception)) or issubclass(kind, _CONTROL_FLOW):
        return None
    if kind not in _raised_types:
        bases = (SolutionError,) if kind is Exception else (kind, SolutionError)
        # Named after the builtin in a module of its own: the verdict reads "solution.ValueError: ...".
        _raised_types[kind] = type(kind.__name__, bases, {"__module__": "solution"})
    return _raised_types[kind]


class Channel:
    """Line-oriented requests to the solution process and its replies."""

    def __init__(self, request_fd: int, reply_fd: int):
        self._requests = os.fdopen(request_fd, "w", encoding="utf-8")
        self._replies = os.fdopen(reply_fd, "r", encoding="utf-8")

    def _read(self) -> dict:
        line = self._replies.readline()
        if not line:
            raise SolutionGone(SOLUTION_GONE)
        try:
            reply = json.loads(line)
        except ValueError:
            raise SolutionError(f"malformed reply from the solution: {line[:100]!r}") from None
        if type(reply) is not dict or len(reply) != 1:
            raise SolutionError(f"malformed reply from the solution: {line[:100]!r}")
        return reply

    def wait_ready(self) -> None:
        if self._read() != {"ready": True}:
            raise SolutionError("the solution did not start as expected")

    def call(self, name: str, args: tuple, kwargs: dict):
        request = {"name": name, "args": to_plain(list(args)), "kwargs": to_plain(kwargs)}
        try:
            self._requests.write(json.dumps(request, ensure_ascii=True) + "\n")
            self._requests.flush()
        except BrokenPipeError:
            raise SolutionGone(SOLUTION_GONE) from None
        reply = self._read()
        if "value" in reply:
            try:
                return from_plain(reply["value"])
            except ValueError as error:
                raise SolutionError(f"the solution returned something that is not plain data: {error}") from None
        raised = reply.get("raised")
        if type(raised) is list and len(raised) == 2 and all(type(part) is str for part in raised):
            kind = _raised_type(raised[0])
            try:
                error = kind(raised[1]) if kind is not None else None
            except TypeError:  # constructors that take more than a message (UnicodeDecodeError, ExceptionGroup)
                error = None
            raise error if error is not None else SolutionError(f"the solution raised {raised[0]}: {raised[1]}")
        raise SolutionError("malformed reply from the solution")


class Candidate:
    """Stands in for one function of the solution: calls go over the channel, values come back as plain data."""

    def __init__(self, channel: Channel, name: str):
        self._channel, self.__name__ = channel, name

    def __call__(self, *args, **kwargs):
        return self._channel.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<solution function {self.__name__}>"


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(error), error)).strip()[-_MAX_ERROR:]


def run_tests(setup: str, tests: list, candidates: list, request_fd: int, reply_fd: int) -> None:
    """Run each test once and write one verdict line per test: ``{"test": i, "error": None | str}``."""
    verdicts = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # what the tests print cannot be taken for a verdict

    def report(index, error):
        verdicts.write(json.dumps({"test": index, "error": error}) + "\n")
        verdicts.flush()

    channel = Channel(request_fd, reply_fd)
    namespace = {"__name__": "__main__"}
    try:
        channel.wait_ready()
        if setup:
            exec(compile(setup, "test_setup.py", "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - every test fails with the reason
        for index in range(len(tests)):
            report(index, _error_text(error))
        return
    for name in candidates:
        namespace[name] = Candidate(channel, name)
    for index, test in enumerate(tests):
        try:
            exec(compile(test, f"test_{index}.py", "exec"), namespace)
            report(index, None)
        except BaseException as error:  # noqa: BLE001 - any failure of a test is its verdict
            report(index, _error_text(error))
