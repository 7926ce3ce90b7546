"""Judge records -> the DPO dataset (pairs.jsonl, the chat format run_dpo.py reads) and judge_stats.json.

Every row carries its provenance: the prompt id and category, which responders wrote chosen and rejected,
what decided it (judge model and rubric version, or the oracle), both verdicts and the run's seed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from phi4_recipes.hashing import stable_hash
from phi4_recipes.jsonl import write_jsonl

from .pairing import DECIDED


def dpo_rows(records: list[dict[str, Any]], judge_model: str, rubric_versions: dict[str, str]) -> list[dict[str, Any]]:
    """One row per selected pair, in record order."""
    rows = []
    for record in records:
        responses = record["responses"]
        for selected in record["selected"]:
            pair, chosen, rejected = record["pairs"][selected["pair"]], selected["chosen"], selected["rejected"]
            by_judge = pair["decided_by"] == "judge"
            chosen_r, rejected_r = responses[chosen], responses[rejected]
            rows.append({
                "id": f"{record['prompt_id']}#{chosen}>{rejected}",
                "prompt": record["messages"],
                "chosen": [{"role": "assistant", "content": chosen_r["text"]}],
                "rejected": [{"role": "assistant", "content": rejected_r["text"]}],
                "source": "judge",
                "prompt_id": record["prompt_id"],
                "category": record["category"],
                "chosen_responder": chosen_r["responder"],
                "rejected_responder": rejected_r["responder"],
                "decided_by": pair["decided_by"],
                "judge_model": judge_model if by_judge else None,
                "rubric_version": rubric_versions[record["category"]] if by_judge else None,
                "oracle": record["oracle"],
                # judge: its verdict with the pair shown (a, b) and shown (b, a); oracle: chosen's, rejected's.
                "verdicts": list(pair["verdicts"]) if by_judge else ["correct", "incorrect"],
                "seed": record["seed"],
            })
    return rows


def drop_duplicate_pairs(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The first row of each (prompt, chosen text, rejected text); returns (rows, how many repeats were dropped).

    Samples of one responder often repeat word for word (a small model at temperature 0.7), and all_pairs then
    yields the same pair many times: on the tiny pipeline 682 rows held 156 distinct pairs. A repeat carries no
    new preference, only extra weight on the prompts whose samples repeat.
    """
    seen, kept = set(), []
    for row in rows:
        key = (row["prompt_id"], _text(row["chosen"]), _text(row["rejected"]))
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept, len(rows) - len(kept)


def _text(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages)


def balance_lengths(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Drop rows until chosen is the longer side in as many rows as it is the shorter side.

    Judges prefer longer answers; a DPO set where chosen is usually longer teaches length. Which rows of the
    larger group go is decided by a hash of the row id (stable, not the file order). Equal lengths stay.
    """
    longer = [r for r in rows if _chars(r["chosen"]) > _chars(r["rejected"])]
    shorter = [r for r in rows if _chars(r["chosen"]) < _chars(r["rejected"])]
    excess, keep = (longer, len(shorter)) if len(longer) > len(shorter) else (shorter, len(longer))
    dropped = {r["id"] for r in sorted(excess, key=lambda r: stable_hash(r["id"]))[keep:]}
    return [r for r in rows if r["id"] not in dropped], len(dropped)


def judge_stats(records: list[dict[str, Any]], rows: list[dict[str, Any]], dropped_for_length: int,
                duplicates_dropped: int = 0) -> dict[str, Any]:
    """Run statistics: outcomes of every compared pair, win rate per responder, lengths of the written rows."""
    outcomes = Counter(p["outcome"] for r in records for p in r["pairs"])
    judged = [p for r in records for p in r["pairs"] if p["decided_by"] == "judge" and p["outcome"] != "identical"]
    wins, games = Counter(), Counter()
    for record in records:
        for pair in record["pairs"]:
            if pair["outcome"] in DECIDED:
                a, b = (record["responses"][k]["responder"] for k in (pair["a"], pair["b"]))
                games.update([a, b])
                wins[a if pair["outcome"] == "a" else b] += 1
    chosen_chars = [_chars(r["chosen"]) for r in rows]
    rejected_chars = [_chars(r["rejected"]) for r in rows]
    return {
        "prompts": len(records),
        "prompts_verified": sum(1 for r in records if r["oracle"]),
        "responses": sum(len(r["responses"]) for r in records),
        "pairs_compared": sum(outcomes.values()),
        "pairs_decided": outcomes["a"] + outcomes["b"],
        "pairs_kept": len(rows),
        "ties": outcomes["tie"] + outcomes["disagree"],
        "ties_both_orders": outcomes["tie"],
        "position_disagreements": outcomes["disagree"],
        "unparseable": outcomes["unparseable"],
        "same_correctness": outcomes["same_correctness"],
        "identical_responses": outcomes["identical"],
        "pairs_judged": len(judged),
        "pairs_by_oracle": sum(1 for r in records for p in r["pairs"] if p["decided_by"] == "oracle"),
        "judge_requests": 2 * len(judged) + sum(p["retried"] for p in judged),
        "verdicts_retried": sum(p["retried"] for p in judged),
        "dropped_for_length_balance": dropped_for_length,
        "duplicate_pairs_dropped": duplicates_dropped,
        # over every decided comparison (not only the selected ones): wins / comparisons the responder was in
        "win_rate": {name: {"wins": wins[name], "comparisons": games[name],
                            "win_rate": round(wins[name] / games[name], 4)} for name in sorted(games)},
        "mean_chosen_chars": _mean(chosen_chars),
        "mean_rejected_chars": _mean(rejected_chars),
        "chosen_longer_share": round(sum(c > r for c, r in zip(chosen_chars, rejected_chars)) / len(rows), 4)
        if rows else None,
    }


def export_dataset(output_dir: str | Path, records: list[dict[str, Any]], *, judge_model: str,
                   rubric_versions: dict[str, str], length_balance: bool) -> dict[str, Any]:
    """Write `pairs.jsonl` and `judge_stats.json` into `output_dir` (atomically); returns the stats."""
    output_dir = Path(output_dir)
    rows, duplicates = drop_duplicate_pairs(dpo_rows(records, judge_model, rubric_versions))
    rows, dropped = balance_lengths(rows) if length_balance else (rows, 0)
    write_jsonl(output_dir / "pairs.jsonl", rows)
    stats = judge_stats(records, rows, dropped, duplicates)
    tmp = output_dir / ".judge_stats.json.tmp"
    tmp.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    tmp.replace(output_dir / "judge_stats.json")
    return stats


def _chars(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in messages)


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None
