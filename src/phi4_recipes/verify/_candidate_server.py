"""The untrusted side of the code oracle: run the model's code, then answer calls to its functions.

``code_check`` runs this inside one sandbox. It executes the solution, says it is ready, and then
reads one request per line (function name and arguments as ``plain_data``) and writes one reply
per line: ``{"value": ...}`` or ``{"raised": [exception type, message]}``. Nothing it writes is
trusted: the test process decodes replies as plain data and judges them itself, so a solution
that rewrites this module, prints verdict-like text or patches builtins only changes its own answers.

Standard library and ``plain_data`` only; the sandboxed program defines both from source.
"""

import json
import os

from phi4_recipes.verify.plain_data import from_plain, to_plain

_MAX_MESSAGE = 500


def _reply(call):
    try:
        value = call()
        return {"value": to_plain(value)}
    except BaseException as error:  # noqa: BLE001 - whatever the solution raises is reported as its answer
        return {"raised": [type(error).__name__, str(error)[:_MAX_MESSAGE]]}


def serve(solution: str, request_fd: int, reply_fd: int) -> None:
    """Run ``solution`` as ``__main__``, then answer requests until the test process closes the channel."""
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    replies = os.fdopen(reply_fd, "w", encoding="utf-8")
    namespace = {"__name__": "__main__"}
    exec(compile(solution, "solution.py", "exec"), namespace)
    replies.write('{"ready":true}\n')
    replies.flush()
    for line in requests:
        request = json.loads(line)
        function = namespace.get(request["name"])
        if function is None:
            reply = {"raised": ["NameError", f"name {request['name']!r} is not defined by the solution"]}
        else:
            args, kwargs = from_plain(request["args"]), from_plain(request["kwargs"])
            reply = _reply(lambda: function(*args, **kwargs))  # noqa: B023 - called at once
        replies.write(json.dumps(reply, ensure_ascii=True, separators=(",", ":")) + "\n")
        replies.flush()
