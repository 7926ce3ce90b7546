"""Instruction reversal for code: from a snippet the model writes the instruction, then regenerates code
from that instruction alone. The (instruction, original code) pair is kept only when the regeneration is
faithful: with tests, the original and the regenerated code both pass them in the sandbox; without tests,
their token similarity reaches the threshold. The instruction comes before the code in every output.
"""

from __future__ import annotations

import difflib
import re

from phi4_recipes.verify import check_python

from .model_output import BadModelOutput, code_block
from .workflow import SourceResult, Workflow, drop, require

TOKEN = re.compile(r"\w+|[^\w\s]")


def code_similarity(a: str, b: str) -> float:
    """Similarity of two programs' token sequences in [0, 1]; layout and comments' spacing do not count."""
    return difflib.SequenceMatcher(None, TOKEN.findall(a), TOKEN.findall(b), autojunk=False).ratio()


class InstructionReversal(Workflow):
    name = "instruction_reversal"
    prompt_names = ("code_to_instruction", "instruction_to_code")

    def process(self, row_id: str, row: dict) -> SourceResult:
        o = self.options
        code = require(row, o.code_field).strip()
        tests = row.get(o.tests_field) if o.tests_field else None
        [instruction] = self.ask("code_to_instruction", f"{row_id}:instruction", code=code)
        instruction = instruction.strip()
        if not instruction:
            raise BadModelOutput("instruction", instruction, "empty reply")
        [reply] = self.ask("instruction_to_code", f"{row_id}:code", instruction=instruction)
        regenerated = code_block(reply, "regenerated_code")
        similarity = round(code_similarity(code, regenerated), 4)
        scores = {"similarity": similarity, "tests": len(tests) if tests else 0}
        if tests:
            if not check_python(code, tests, timeout=o.sandbox_timeout).passed:
                return SourceResult(row_id, drops=[drop("original_fails_tests")])
            if not check_python(regenerated, tests, timeout=o.sandbox_timeout).passed:
                return SourceResult(row_id, drops=[drop("regenerated_fails_tests", similarity=similarity)])
        elif similarity < o.similarity_threshold:
            return SourceResult(row_id, drops=[drop("below_similarity", similarity=similarity)])
        answer = f"```python\n{code}\n```"
        messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": answer}]
        out = self.output_row(row_id, 0, text=f"{instruction}\n\n{code}\n", messages=messages, scores=scores,
                              instruction=instruction, code=code, regenerated_code=regenerated)
        return SourceResult(row_id, rows=[out])
