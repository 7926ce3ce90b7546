"""Dataset rows -> the questions a PTS run searches: id, chat-template query ids, and an oracle.

The search's :data:`~phi4_recipes.pts.IdsOracle` judges token ids; ``verify``'s oracles judge text.
:class:`ResponseOracle` is the bridge: it decodes exactly the ids it is given (the
response prefix plus a continuation, never the query) and hands the text to a ``verify`` oracle, so a
question that happens to contain its own answer cannot make a wrong response look right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from phi4_recipes.data.sources import require_columns
from phi4_recipes.verify import ORACLE_KINDS, extract_final_answer, make_oracle


@dataclass(frozen=True)
class Question:
    """One row to search.

    :param id: stable id (shard assignment, resume and seeds all key on it).
    :param text: the user message.
    :param reference: what the oracle compares against (answer, letter, tests).
    :param oracle_kind: one of ``verify.ORACLE_KINDS``.
    """

    id: str
    text: str
    reference: Any
    oracle_kind: str


def read_questions(dataset: Dataset, name: str, *, id_field: str | None, question_field: str,
                   answer_field: str, oracle: str, oracle_field: str | None = None,
                   max_questions: int | None = None) -> list[Question]:
    """Validate the rows and turn them into :class:`Question` s, in dataset order.

    :param name: the dataset's path or id, for error messages.
    :param id_field: column of unique ids; ``None`` uses the row index (stable only while the data is).
    :param oracle: kind for every row, unless ``oracle_field`` names a column with a kind per row.
    :param max_questions: keep the first N rows.
    :raises ValueError: missing column, empty question or reference, unknown oracle kind or repeated id,
        naming the dataset and the row.
    """
    columns = [question_field, answer_field] + [c for c in (id_field, oracle_field) if c]
    require_columns(dataset, columns, name)
    if max_questions is not None:
        dataset = dataset.select(range(min(max_questions, len(dataset))))
    questions, seen = [], {}
    for index, row in enumerate(dataset):
        qid = str(row[id_field]) if id_field else str(index)
        where = f"dataset {name}, row {index} (id {qid!r})"
        if qid in seen:
            raise ValueError(f"{where}: id repeats row {seen[qid]}; ids must be unique to resume and shard")
        seen[qid] = index
        text, reference = row[question_field], row[answer_field]
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: column '{question_field}' is empty or not text")
        if reference is None or (isinstance(reference, str | list) and not reference):
            raise ValueError(f"{where}: column '{answer_field}' is empty")
        kind = row[oracle_field] if oracle_field else oracle
        if kind not in ORACLE_KINDS:
            raise ValueError(f"{where}: oracle kind {kind!r} is not one of {ORACLE_KINDS}")
        questions.append(Question(qid, text, reference, kind))
    return questions


def query_ids(tokenizer, question: Question, system_prompt: str | None = None) -> list[int]:
    """The question in the chat template, ending with the assistant header (the model answers next)."""
    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": question.text}
    ]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    return [int(t) for t in ids]


class ResponseOracle:
    """An ``IdsOracle`` for the search: decode the response ids alone, ask a ``verify`` oracle.

    Verdicts are memoised: rollouts of one question reach the same few answers along many different
    texts, and a math comparison may cost a round trip to a sympy worker process. The math oracle's
    verdict depends only on the answer it extracts from the text, so that answer is the memo key there;
    other kinds key on the whole text.

    :param tokenizer: decodes the ids (special tokens such as ``<|im_end|>`` dropped).
    :param question: whose reference and oracle kind to use.
    :param options: extra keyword options of ``verify.make_oracle``.
    """

    def __init__(self, tokenizer, question: Question, options: dict[str, Any] | None = None):
        try:
            self.judge = make_oracle(question.oracle_kind, question.reference, **(options or {}))
        except (ValueError, TypeError) as err:
            raise ValueError(f"question {question.id!r}: cannot build its {question.oracle_kind} oracle: {err}") from err
        self.tokenizer = tokenizer
        self.kind = question.oracle_kind
        self.verdicts: dict[str | None, bool] = {}

    def text(self, response_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(response_ids), skip_special_tokens=True)

    def __call__(self, response_ids: Sequence[int]) -> bool:
        text = self.text(response_ids)
        key = extract_final_answer(text) if self.kind == "math" else text
        if key not in self.verdicts:
            self.verdicts[key] = bool(self.judge(text))
        return self.verdicts[key]
