"""Question filtering by plurality: k independent answers per question and a majority vote.

Questions whose answers all agree are too easy, and questions without a clear plurality are ambiguous or
too hard: both are dropped. The rest keep the plurality answer as a pseudo-label with its agreement rate,
and, with ``replace_answer``, it replaces a given answer that is missing or disagrees with it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from phi4_recipes.verify import normalize_answer

from .model_output import final_answer
from .workflow import SourceResult, Workflow, drop, require


@dataclass(frozen=True)
class Vote:
    """The outcome of k answers: ``verdict`` is "kept", "all_agree" or "no_plurality"."""

    verdict: str
    label: str | None
    agreement: float
    counts: dict[str, int]


def plurality_vote(answers: list[str | None], min_agreement: float, drop_unanimous: bool = True) -> Vote:
    """Vote over final answers (None = no answer, which counts in k but for no one).

    The plurality answer must be strictly ahead of the next one and hold at least ``min_agreement`` of
    the k answers; all k agreeing is "all_agree" when ``drop_unanimous``.
    """
    counts = Counter(a for a in answers if a is not None)
    ranked = counts.most_common()
    if not ranked:
        return Vote("no_plurality", None, 0.0, {})
    label, top = ranked[0]
    agreement = top / len(answers)
    tied = len(ranked) > 1 and ranked[1][1] == top
    if tied or agreement < min_agreement:
        return Vote("no_plurality", None, agreement, dict(counts))
    if drop_unanimous and top == len(answers):
        return Vote("all_agree", label, agreement, dict(counts))
    return Vote("kept", label, agreement, dict(counts))


class PluralityFilter(Workflow):
    name = "plurality"
    prompt_names = ("answer_question",)

    def process(self, row_id: str, row: dict) -> SourceResult:
        o = self.options
        question = require(row, o.question_field)
        replies = self.ask("answer_question", f"{row_id}:answers", n=o.num_answers, question=question)
        answers = [final_answer(reply) for reply in replies]
        vote = plurality_vote(answers, o.min_agreement, o.drop_unanimous)
        if vote.verdict != "kept":
            return SourceResult(row_id, drops=[drop(vote.verdict, agreement=vote.agreement, counts=vote.counts)])
        response = replies[answers.index(vote.label)]
        given = row.get(o.answer_field) if o.answer_field else None
        given = None if given is None or str(given).strip() == "" else str(given)
        agrees = given is not None and normalize_answer(given) == vote.label
        replaced = o.replace_answer and not agrees
        answer = vote.label if replaced else given
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
        scores = {"agreement": vote.agreement, "num_answers": len(answers)}
        out = self.output_row(row_id, 0, text=f"{question}\n{response}", messages=messages, scores=scores,
                              question=question, answer=answer, pseudo_label=vote.label,
                              agreement=vote.agreement, given_answer=given, given_agrees=agrees,
                              answer_replaced=replaced)
        return SourceResult(row_id, rows=[out])
