"""Child process that compares answers with math-verify; run by path, spoken to over JSON lines.

math-verify bounds parse/verify time with SIGALRM, which only works in a main thread, so the
comparison lives here (this process's main thread) and the parent adds a hard wall-clock kill
for expressions that hang inside C code where the alarm cannot interrupt them.

Protocol: one request per stdin line ``{"prediction": str, "reference": str, "timeout": int}``,
one reply per stdout line ``{"equal": bool, "error": str | null, "reason": str | null}`` (reason:
why unequal answers are unequal, when it is more than "not equal"). The first line written is
``{"ready": true}`` once math-verify is imported.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys


def _as_latex(answer: str) -> str:
    """Wrap an extracted answer in ``$...$`` so math-verify's LaTeX extractor anchors on it."""
    answer = answer.strip()
    while len(answer) >= 2 and answer.startswith("$") and answer.endswith("$"):
        answer = answer[1:-1].strip()
    return f"${answer}$"


def main() -> None:
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    logging.disable(logging.WARNING)

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]

    @functools.lru_cache(maxsize=4096)
    def parse_answer(answer: str, timeout: int) -> tuple:
        # PTS scores many samples against one reference, so the gold parse is worth caching.
        return tuple(parse(_as_latex(answer), extraction_config=extraction, parsing_timeout=timeout))

    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        reply: dict
        try:
            request = json.loads(line)
            timeout = max(1, int(request["timeout"]))
            gold = parse_answer(request["reference"], timeout)
            predicted = parse_answer(request["prediction"], timeout)
            equal = bool(gold and predicted and verify(list(gold), list(predicted), timeout_seconds=timeout))
            # parse() returns nothing both for text it cannot read and when its alarm fires.
            reason = (
                None if equal
                else "math-verify could not parse the reference answer" if not gold
                else "math-verify could not parse the answer" if not predicted
                else None
            )
            reply = {"equal": equal, "error": None, "reason": reason}
        except Exception as error:  # noqa: BLE001 - any failure is a "not equal" verdict, reported upward
            reply = {"equal": False, "error": f"{type(error).__name__}: {error}", "reason": None}
        channel.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
