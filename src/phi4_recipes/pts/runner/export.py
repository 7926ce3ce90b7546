"""PTS shards -> ``pairs.jsonl``, the single-token DPO dataset both ``run_dpo.py`` and ``trl dpo`` train on.

    python -m phi4_recipes.pts.runner.export outputs/tiny/pts [--tokenizer PATH]

Each row keeps the exact ids the search used: ``prompt_ids`` = query (chat template, generation prompt)
+ response prefix, ``chosen_ids`` / ``rejected_ids`` = one token each, so nothing is re-tokenised on
the way to our trainer (data/preference.py takes the id columns whenever they are there). The same row holds
their decoded text as TRL's ``prompt`` / ``chosen`` / ``rejected``, so ``trl dpo`` reads the file as it is
(TRL tokenises the text itself and overwrites the id columns), and ``exact_retokenisation`` says where that
text does not encode back to the searched ids. The rest is provenance.
All shard files in the folder are merged, whatever task count wrote them; a pair is identified by
(question id, response index, position) and written once, in that order.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from phi4_recipes.data.preference import ID_COLUMNS, TEXT_COLUMNS
from phi4_recipes.jsonl import write_jsonl

from .records import QuestionRecord, read_question_records

PAIRS_FILE = "pairs.jsonl"
PROMPT_IDS, CHOSEN_IDS, REJECTED_IDS = ID_COLUMNS
PROMPT, CHOSEN, REJECTED = TEXT_COLUMNS


def retokenises_exactly(tokenizer, prompt: str, completion: str, ids: list[int]) -> bool:
    """Whether encoding ``prompt + completion`` gives back ``ids``. Where it does not (BPE merges across the
    boundary, e.g. " 4" + "2" -> " 42"), a text trainer compares other tokens than the search found, and one
    that appends an end token (TRL does for text) trains on a token the search never saw."""
    return tokenizer(prompt + completion, add_special_tokens=False)["input_ids"] == ids


def pair_rows(records: Iterable[QuestionRecord], tokenizer) -> list[dict[str, Any]]:
    """One DPO row per pair found in the records (exact ids and their text), sorted by (question id, response
    index, position)."""
    rows: dict[tuple[str, int, int], dict[str, Any]] = {}
    for record in records:
        for searched in record.responses:
            result = searched.result
            p_after = {p.position: p.p_after for p in result.pivots}
            for pair in result.pairs:
                key = (record.question_id, searched.response_index, pair.position)
                if key in rows:
                    continue
                prompt_ids = list(result.query_ids) + list(pair.prefix_ids)
                chosen, rejected = [pair.chosen_token_id], [pair.rejected_token_id]
                text = [tokenizer.decode(ids, skip_special_tokens=False) for ids in (prompt_ids, chosen, rejected)]
                rows[key] = {
                    PROMPT_IDS: prompt_ids,
                    CHOSEN_IDS: chosen,
                    REJECTED_IDS: rejected,
                    PROMPT: text[0],
                    CHOSEN: text[1],
                    REJECTED: text[2],
                    "exact_retokenisation": (retokenises_exactly(tokenizer, text[0], text[1], prompt_ids + chosen)
                                             and retokenises_exactly(tokenizer, text[0], text[2],
                                                                     prompt_ids + rejected)),
                    "question_id": record.question_id,
                    "response_index": searched.response_index,
                    "position": pair.position,
                    "p_before": pair.p_before,
                    "p_after": p_after[pair.position],
                    "p_chosen": pair.p_chosen,
                    "p_rejected": pair.p_rejected,
                    "chosen_trials": pair.chosen_trials,
                    "rejected_trials": pair.rejected_trials,
                    "chosen_is_pivot": pair.chosen_is_pivot,
                    "rollouts": result.rollouts,
                    "model": record.model,
                    "seed": result.seed,
                }
    return [rows[key] for key in sorted(rows)]


def summarize(records: list[QuestionRecord], num_pairs: int) -> dict[str, Any]:
    """The numbers a run reports: questions by status, responses searched, pivots, pairs, rollouts."""
    statuses = [r.status for r in records]
    results = [s.result for r in records for s in r.responses]
    # p(query) in ten bins of 0.1: the first thing to look at when a model yields few pivots.
    histogram = [0] * 10
    for r in records:
        if r.p_query is not None:
            histogram[min(9, int(r.p_query * 10))] += 1
    return {
        "questions": len(records),
        "searched": statuses.count("searched"),
        "filtered": statuses.count("filtered"),
        "no_response": statuses.count("no_response"),
        "responses_searched": sum(res.status == "searched" for res in results),
        "pivots": sum(len(res.pivots) for res in results),
        "pairs": num_pairs,
        "rollouts": sum(res.rollouts for res in results),
        "reused_rollouts": sum(res.reused_rollouts for res in results),
        "p_query_histogram": histogram,
        "seconds": round(sum(r.seconds for r in records), 1),
    }


def export_pairs(output_dir: str | Path, records: list[QuestionRecord], tokenizer) -> dict[str, Any]:
    """Merge the records of every shard in ``output_dir`` (``read_question_records``, read once by the caller)
    into ``output_dir/pairs.jsonl`` (exact ids and their text); return the summary numbers.

    Written atomically: several shard processes may export into one folder, and a reader (or ``run_dpo``)
    never sees a half-written file.
    """
    rows = pair_rows(records, tokenizer)
    write_jsonl(Path(output_dir) / PAIRS_FILE, rows, atomic=True, fsync=True)
    return summarize(records, len(rows))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Merge PTS shards into pairs.jsonl for run_dpo.py and trl dpo.")
    parser.add_argument("output_dir", help="the run's output_dir (holds shard-*-of-*.jsonl)")
    parser.add_argument("--tokenizer", help="tokenizer for the text columns; default: the one the run used")
    options = parser.parse_args(argv)
    records = read_question_records(options.output_dir)
    if not records:
        raise SystemExit(f"{options.output_dir}: no shard-*-of-*.jsonl records to export")
    from phi4_recipes.model_loading import get_tokenizer

    name = options.tokenizer or records[0].tokenizer
    try:
        tokenizer = get_tokenizer(name, name)
    except OSError as err:
        raise SystemExit(f"cannot load tokenizer {name!r} recorded in the shards; pass --tokenizer ({err})") from err
    summary = export_pairs(options.output_dir, records, tokenizer)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
