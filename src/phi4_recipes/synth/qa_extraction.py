"""Q&A extraction: deduction chains in a passage become question-answer pairs, each grounded by the exact
passage span that supports it. A pair whose quoted support is not in the passage is dropped.
"""

from __future__ import annotations

from .model_output import BadModelOutput, parse_json
from .workflow import SourceResult, Workflow, drop, require


class QAExtraction(Workflow):
    name = "qa_extraction"
    prompt_names = ("extract_qa",)

    def process(self, row_id: str, row: dict) -> SourceResult:
        o = self.options
        passage = require(row, o.text_field)[:o.max_passage_chars]
        [reply] = self.ask("extract_qa", f"{row_id}:qa", text=passage, max_pairs=o.max_pairs)
        pairs = parse_json(reply, "qa_pairs", list)
        result = SourceResult(row_id)
        for index, pair in enumerate(pairs[:o.max_pairs]):
            fields = [pair.get(k) if isinstance(pair, dict) else None for k in ("question", "answer", "support")]
            if not all(isinstance(f, str) and f.strip() for f in fields):
                result.drops.append(drop(BadModelOutput("qa_pair", str(pair), "no question, answer or support").reason, pair=index))
                continue
            question, answer, support = (f.strip() for f in fields)
            start = passage.find(support)
            if start < 0:
                result.drops.append(drop("ungrounded_support", pair=index, support=support[:200]))
                continue
            user = f"{passage}\n\n{question}" if o.include_passage else question
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
            result.rows.append(self.output_row(
                row_id, index, text=f"{question}\n{answer}", messages=messages, scores={},
                question=question, answer=answer,
                support={"text": support, "start": start, "end": start + len(support)}))
        if not result.rows and not result.drops:
            result.drops.append(drop("no_pairs"))
        return result
