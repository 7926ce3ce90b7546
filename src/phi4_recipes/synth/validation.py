"""Validation: code responses run with their tests in the sandbox, math responses go to the math oracle;
a failure drops the row with its reason. With ``generate_responses`` the model writes each response first.
"""

from __future__ import annotations

from phi4_recipes.verify import check_python, extract_code, math_equal

from .workflow import SourceResult, Workflow, drop, require


def last_assistant_turn(messages: object) -> str | None:
    if isinstance(messages, list):
        for turn in reversed(messages):
            if isinstance(turn, dict) and turn.get("role") == "assistant" and isinstance(turn.get("content"), str):
                return turn["content"]
    return None


class Validation(Workflow):
    name = "validation"
    prompt_names = ("answer_for_validation",)

    def process(self, row_id: str, row: dict) -> SourceResult:
        o = self.options
        kind = (row.get(o.oracle_field) if o.oracle_field else None) or o.oracle
        if kind not in ("math", "code"):
            return SourceResult(row_id, bad={"reason": "unknown_oracle", "detail": repr(kind)})
        question = require(row, o.question_field)
        if o.generate_responses:
            [response] = self.ask("answer_for_validation", f"{row_id}:response", question=question)
        elif o.response_field:
            response = require(row, o.response_field)
        else:
            response = last_assistant_turn(row.get("messages"))
            if response is None:
                return SourceResult(row_id, bad={"reason": "missing_field:messages", "detail": "no assistant turn"})
        if kind == "code":
            tests = require(row, o.tests_field, list)
            check = check_python(extract_code(response), tests, timeout=o.sandbox_timeout)
            if not check.passed:
                errors = [t.error for t in check.outcomes if not t.passed]
                return SourceResult(row_id, drops=[drop("code_failed_tests", first_error=(errors or [""])[0][:200])])
            scores = {"tests_passed": check.num_passed}
        else:
            reference = str(require(row, o.answer_field, (str, int, float)))
            if not math_equal(response, reference):
                return SourceResult(row_id, drops=[drop("math_wrong", reference=reference)])
            scores = {"math_correct": True}
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
        prompts = self.prompt_names if o.generate_responses else ()
        out = self.output_row(row_id, 0, text=f"{question}\n{response}", messages=messages, scores=scores,
                              prompts=prompts, oracle=kind)
        return SourceResult(row_id, rows=[out])
