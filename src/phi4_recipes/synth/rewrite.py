"""Rewrite and augment with self-revision: the writer turns a seed into an exercise, a discussion or a
structured reasoning task; a critic scores each draft on accuracy, reasoning and clarity; the writer
revises from the critic's feedback until the rubric passes or ``max_revisions`` is spent. Every round
(draft, scores, feedback) is kept on the output row.
"""

from __future__ import annotations

from .model_output import BadModelOutput, parse_json, parse_scores
from .workflow import SourceResult, Workflow, drop, require

RUBRIC = ("accuracy", "reasoning", "clarity")


class RewriteWithRevision(Workflow):
    name = "rewrite"
    prompt_names = ("rewrite_draft", "critique", "revise")
    formats = ("text", "messages")

    def process(self, row_id: str, row: dict) -> SourceResult:
        o = self.options
        seed = require(row, o.text_field)
        [draft] = self.ask("rewrite_draft", f"{row_id}:draft", task_kind=o.task_kind, text=seed)
        rounds = []
        for revision in range(o.max_revisions + 1):
            if not draft.strip():
                raise BadModelOutput(f"draft_{revision}", draft, "empty reply")
            [critique] = self.ask("critique", f"{row_id}:critique:{revision}", temperature=o.critic_temperature,
                                  seed=seed, draft=draft)
            scores = parse_scores(critique, f"critique_{revision}", RUBRIC, 1, 5)
            feedback = str(parse_json(critique, f"critique_{revision}").get("feedback", ""))
            passed = all(scores[k] >= o.pass_score for k in RUBRIC)
            rounds.append({"round": revision, "draft": draft, "scores": scores, "feedback": feedback, "passed": passed})
            if passed or revision == o.max_revisions:
                break
            [draft] = self.ask("revise", f"{row_id}:revise:{revision}", seed=seed, draft=draft, feedback=feedback)
        if not rounds[-1]["passed"] and not o.keep_unpassed:
            return SourceResult(row_id, drops=[drop("rubric_not_passed", rounds=rounds)])
        final = rounds[-1]["draft"].strip()
        messages = [{"role": "user", "content": self.prompts["rewrite_draft"].render(task_kind=o.task_kind, text=seed)},
                    {"role": "assistant", "content": final}]
        out = self.output_row(row_id, 0, text=final, messages=messages,
                              scores={**rounds[-1]["scores"], "passed": rounds[-1]["passed"]},
                              revisions=len(rounds) - 1, rounds=rounds)
        return SourceResult(row_id, rows=[out])
