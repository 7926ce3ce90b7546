"""The trusted side of the code oracle: run the tests, reaching the solution only through the channel.

``code_check`` runs this in its own sandbox, separate from the solution's: the two share no
interpreter, no memory and no files. It reads its settings (trusted setup, tests, entry points) as
JSON on stdin, waits for the solution to import, runs the setup (HumanEval's prompt with its helper
functions), binds the names that are the solution's (``_candidates``) to what the solution's module
holds (values rebuilt here, other objects as ``Remote`` proxies), and runs each test once. Every
comparison uses this side's classes (see ``_remote``). Verdicts go to a private duplicate of stdout,
exactly one JSON line per test; whatever the tests print goes nowhere.

Standard library and this package's stdlib-only modules; the sandboxed program defines them from source.
"""

import json
import os
import sys
import traceback

from phi4_recipes.verify._candidates import solution_names
from phi4_recipes.verify._peer import SOLUTION_GONE, ChannelClosed, Peer, ProtocolError
from phi4_recipes.verify._remote import Missing, SolutionError, TestsSide, is_tests_instance

_MAX_ERROR = 500


class SolutionGone(Exception):
    """The solution's process closed the channel (it crashed, exited or was killed)."""


def _error_text(error: BaseException) -> str:
    if isinstance(error, ChannelClosed):
        return SOLUTION_GONE
    try:
        return "".join(traceback.format_exception_only(type(error), error)).strip()[-_MAX_ERROR:]
    except BaseException as inner:  # noqa: BLE001 - a message that cannot be rendered still fails the test
        return f"{type(error).__name__} (its message could not be rendered: {type(inner).__name__})"


def _solution_failure(hello: dict) -> str | None:
    """Why the solution could not be imported, from its first message; None when it is ready."""
    if type(hello.get("ready")) is list and all(type(name) is str for name in hello["ready"]):
        return None
    failed = hello.get("failed")
    if type(failed) is dict and type(failed.get("types")) is list and failed["types"]:
        name = str(failed["types"][0][1]) if type(failed["types"][0]) is list else "error"
        return f"the solution failed to import: {name}: {str(failed.get('text', ''))[:300]}"
    return "the solution did not start as expected"


def _bind(side: TestsSide, name: str):
    """The tests' binding for the solution's ``name``: its value rebuilt here, or a proxy for its object."""
    try:
        return side.peer.request("get", name)
    except (ChannelClosed, ProtocolError):
        raise
    except Exception as error:  # noqa: BLE001 - an entry point it lacks fails the tests that use it
        return Missing(name, error)


def run_tests(request_fd: int, reply_fd: int) -> None:
    """Run each test once and write one verdict line per test: ``{"test": i, "error": None | str}``."""
    settings = json.loads(sys.stdin.read())
    setup, tests, entry_points = settings["setup"], settings["tests"], settings["entry_points"]
    verdicts = os.fdopen(os.dup(1), "w", encoding="utf-8")
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # what the tests print can neither be taken for a verdict nor fill the output limit
    sys.stdout = sys.stderr = open(quiet, "w", closefd=False)  # noqa: SIM115 - for the process's lifetime

    def report(index, error):
        verdicts.write(json.dumps({"test": index, "error": error}) + "\n")
        verdicts.flush()

    side = TestsSide()
    side.peer = Peer(reply_fd, request_fd, export=side.export, resolve=side.resolve, serve=side.serve,
                     errors=side.errors, instances=is_tests_instance)  # fmt: skip
    namespace = {"__name__": "__main__"}
    try:
        hello = side.peer.receive()
        failure = _solution_failure(hello)
        if failure is None:
            if setup:
                exec(compile(setup, "test_setup.py", "exec"), namespace)
            names = solution_names(tests, entry_points, set(hello["ready"]), set(namespace))
            namespace.update({name: _bind(side, name) for name in names})
    except BaseException as error:  # noqa: BLE001 - every test fails with the reason
        failure = _error_text(error)
    if failure is not None:
        for index in range(len(tests)):
            report(index, failure)
        return
    for index, test in enumerate(tests):
        try:
            exec(compile(test, f"test_{index}.py", "exec"), namespace)
            report(index, None)
        except BaseException as error:  # noqa: BLE001 - any failure of a test is its verdict
            report(index, _error_text(error))


__all__ = ["SOLUTION_GONE", "SolutionError", "SolutionGone", "run_tests"]
