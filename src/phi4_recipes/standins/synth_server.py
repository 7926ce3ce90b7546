"""A STAND-IN for a real model: rule-based replies to the synth prompts, served OpenAI-style on 127.0.0.1.

    python -m phi4_recipes.standins.synth_server --port 0 --port_file /tmp/port   # prints its base URL

The tiny pipeline runs synth before any model exists, and an untrained tiny model writes nothing a
workflow can parse, so this endpoint answers each prompt (recognised by its "Task:" line) with a
deterministic rule: arithmetic is solved (most questions get one wrong answer among k, some none, some
only wrong ones, so the plurality vote has all three outcomes), pages are scored by counting numbers and
reasoning markers, drafts gain a "Check:" line when the critic asks for one, code is described and
rebuilt from its signature. It is NOT a language model and its data is only as good as these rules; use
vLLM or any OpenAI-compatible server for real data. Routes: GET /v1/models, POST /v1/chat/completions (standins.chat_server: malformed requests get 400).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from phi4_recipes.hashing import stable_hash
from phi4_recipes.standins.chat_server import ChatServer, serve_from_command_line

# Every rule reads its text in time linear in the text, so a 1 MiB prompt costs milliseconds, not the minutes
# (holding the GIL, stalling every client) that patterns rescanning the rest of the text from each candidate
# start took: `def f(` repeated, "`f(" repeated, a long run of digits. Signatures and instructions are found by
# `_find_call`; OPERATION starts only at the first digit of a number and never backtracks into one.
NUMBER = re.compile(r"-?\d+")
MAX_DIGITS = 18  # a "word problem" with longer numbers is not one; Python refuses int() past 4,300 digits
FACT = re.compile(r"\b([A-Z][a-z]+) ([a-z]+)s (\d+) ([a-z]+) ((?:at|in|on) [a-z ]+)\.")
DEF_HEAD = re.compile(r"def (\w++)\(")
INSTRUCTION_HEAD = re.compile(r"`(\w++)\(")
SPACE = re.compile(r"\s*+")
PRINT_CALL = re.compile(r"^print\((.+)\)", re.MULTILINE)
PRINT_INSTRUCTION = re.compile(r"print the result of `([^`]+)`")
OPERATION = re.compile(r"(-?(?<!\d)\d++) ([-+*]) (-?\d++) = (-?\d++)")


def _section(prompt: str, header: str) -> str:
    """The text after ``header:`` up to the next blank line followed by a capitalised label, or the end."""
    match = re.search(rf"^{header}[^\n]*:\n", prompt, re.MULTILINE)
    if match is None:
        return ""
    rest = prompt[match.end():]
    end = re.search(r"\n\n(?:Reply with|Draft:|Feedback:|Seed:|Passage:)", rest)
    return rest[: end.start()] if end else rest.rstrip()


def solve(question: str) -> tuple[int, str, int, int] | None:
    """(x, operation, y, result) of a two-number arithmetic word problem, or None."""
    numbers = NUMBER.findall(question)[:2]
    if len(numbers) < 2 or max(len(n.lstrip("-")) for n in numbers) > MAX_DIGITS:
        return None
    x, y = int(numbers[0]), int(numbers[1])
    text = question.lower()
    if "pack" in text or "each" in text:
        return x, "*", y, x * y
    if any(w in text for w in ("gives away", "taken", "left", "remain")):
        return x, "-", y, x - y
    return x, "+", y, x + y


def answer_question(question: str, index: int, k: int) -> str:
    solved = solve(question)
    if solved is None:
        return "I cannot tell."
    x, op, y, truth = solved
    bucket = stable_hash(question) % 10
    if bucket == 0:
        value = truth  # easy: every sample agrees
    elif bucket == 1:
        value = truth + 1 + index  # hard: every sample differs
    else:
        value = truth + 2 if k > 1 and index == stable_hash(question) % k else truth  # one dissenting sample
    return f"{x} {op} {y} = {value}. The answer is {value}."


def score_text(text: str, keys: tuple[str, str]) -> str:
    numbers = len(NUMBER.findall(text))
    reasoning = any(marker in text for marker in ("=", " so ", "answer is", "leaves", "make"))
    return json.dumps({keys[0]: min(10, 2 * numbers), keys[1]: 9 if reasoning else 3})


def extract_qa(passage: str) -> str:
    pairs = [{"question": f"How many {item} does {name} {verb} {place}?", "answer": count, "support": match.group(0)}
             for match in FACT.finditer(passage)
             for name, verb, count, item, place in [match.groups()]]
    return json.dumps(pairs[:4])


def rewrite_draft(seed: str) -> str:
    if "?" in seed:
        question, _, solution = seed.rpartition("?")
        return f"Exercise: {question.strip()}?\nWorked solution: {solution.strip()}"
    return f"Discussion: {seed.strip()}"


def critique(draft: str) -> str:
    checked = "Check:" in draft
    return json.dumps({"accuracy": 5, "reasoning": 5 if checked else 3,
                       "clarity": 5 if draft.startswith(("Exercise:", "Discussion:")) else 3,
                       "feedback": "Looks right." if checked else "Add a line that checks the result."})


def revise(draft: str) -> str:
    match = OPERATION.search(draft)
    if match is None:
        return f"{draft}\nCheck: every number above appears in the seed."
    x, op, y, r = match.group(1), match.group(2), match.group(3), match.group(4)
    inverse = {"+": f"{r} - {y} = {x}", "-": f"{r} + {y} = {x}", "*": f"{r} / {y} = {x}"}[op]
    return f"{draft}\nCheck: {inverse}."


def _find_call(text: str, head: re.Pattern, tail: Callable[[str, int], str | None]) -> tuple[str, str, str] | None:
    """(name, parameters, expression) of the first ``head`` match, ``(``, parameters up to the first ``)``, and
    an expression that ``tail(text, index of that ")")`` reads, or None.

    Heads that share a ``)`` share its outcome, so each stretch of text is read once.
    """
    close = failed = -1
    for match in head.finditer(text):
        if close < match.end():
            close = text.find(")", match.end())
            if close < 0:
                return None  # no ")" closes this head, nor any later one
        if close == failed:
            continue
        expression = tail(text, close)
        if expression is not None:
            return match.group(1), text[match.end():close], expression
        failed = close
    return None


def _returned_expression(code: str, close: int) -> str | None:
    """What ``):`` at ``close``, whitespace with a newline, then ``return EXPR`` on one line returns."""
    if not code.startswith("):", close):
        return None
    after = SPACE.match(code, close + 2).end()
    if "\n" not in code[close + 2:after] or not code.startswith("return ", after):
        return None
    end = code.find("\n", after + 7)
    expression = code[after + 7:] if end < 0 else code[after + 7:end]
    return expression or None


def _instructed_expression(instruction: str, close: int) -> str | None:
    """The EXPR of ``)` that returns `EXPR``` at ``close``."""
    lead = ")` that returns `"
    if not instruction.startswith(lead, close):
        return None
    end = instruction.find("`", close + len(lead))
    if end < 0:
        return None
    return instruction[close + len(lead):end] or None


def code_to_instruction(code: str) -> str:
    found = _find_call(code, DEF_HEAD, _returned_expression)
    if found is None:
        return "Write a Python program."
    name, params, expression = found
    printed = PRINT_CALL.search(code)
    tail = f" Then print the result of `{printed.group(1).split('  #')[0].strip()}`." if printed else ""
    return f"Write a Python function `{name}({params})` that returns `{expression.strip()}`.{tail}"


def instruction_to_code(instruction: str) -> str:
    found = _find_call(instruction, INSTRUCTION_HEAD, _instructed_expression)
    if found is None:
        return "```python\npass\n```"
    name, params, expression = found
    code = f"def {name}({params}):\n    return {expression}\n"
    printed = PRINT_INSTRUCTION.search(instruction)
    if printed:
        code += f"\n\nprint({printed.group(1)})\n"
    return f"```python\n{code}```"


def standin_reply(prompt: str, index: int = 0, k: int = 1) -> str:
    """The rule-based reply to one synth prompt (sample ``index`` of ``k``)."""
    task = prompt.split("\n", 1)[0].removeprefix("Task:").strip()
    if task == "score_page":
        return score_text(_section(prompt, "Document"), ("educational_value", "reasoning_depth"))
    if task == "score_passage":
        return score_text(_section(prompt, "Passage"), ("factual", "reasoning"))
    if task == "answer_question":
        body = _section(prompt, "Problem") if "Problem:" in prompt else prompt.split("\n\n", 1)[-1]
        if "def " in body or "function" in body:
            return instruction_to_code(body)
        return answer_question(body, index, k)
    if task == "extract_qa":
        return extract_qa(_section(prompt, "Passage"))
    if task == "rewrite_draft":
        return rewrite_draft(_section(prompt, "Seed"))
    if task == "critique":
        return critique(_section(prompt, "Draft"))
    if task == "revise":
        return revise(_section(prompt, "Draft"))
    if task == "code_to_instruction":
        return code_to_instruction(prompt)
    if task == "instruction_to_code":
        return instruction_to_code(_section(prompt, "Instruction"))
    return "I do not know this task."


class StandinServer(ChatServer):
    """Serves ``standin_reply`` at ``base_url``; ``delay`` seconds per request slows it for kill tests."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0, model_name: str = "standin"):
        super().__init__(_reply, model_name=model_name, host=host, port=port, latency_s=delay)


def _reply(body: dict, index: int, n: int) -> str:
    prompt = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
    return standin_reply(prompt, index, n)


def _add_port_file(parser) -> None:
    parser.add_argument("--port_file", help="Write the bound port here once listening (for scripts).")


def _build(args) -> StandinServer:
    standin = StandinServer(host=args.host, port=args.port, delay=args.latency_s)
    if args.port_file:
        Path(args.port_file).write_text(str(standin._httpd.server_address[1]))
    print("stand-in synth endpoint: rule-based, not a model", flush=True)
    return standin


if __name__ == "__main__":
    serve_from_command_line(_build, __doc__.split("\n\n")[0], add_arguments=_add_port_file)
