"""One batch of prompts through the stage: every responder answers, pairs are labelled, records come out.

The batch is the unit of resumption: its composition is fixed by the shard's prompt order, and its
responders are seeded from the batch, so a batch redone after a kill gives the same records, byte for
byte, and only the ones missing from the shard are appended.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .labelling import PairJudge, combine_orders, oracle_outcome, verify_responses
from .pairing import candidate_pairs, select_pairs
from .prompt_sets import JudgePrompt
from .responders import Responder, batch_seed


def judge_batch(prompts: list[JudgePrompt], responders: list[Responder], pair_judge: PairJudge, *, pairing: str,
                policy: str | None, oracle_options: dict[str, Any] | None, run_seed: int,
                settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Records (one per prompt, in prompt order) for a batch; see records.py for the fields."""
    conversations = [p.messages for p in prompts]
    with ThreadPoolExecutor(max_workers=len(responders), thread_name_prefix="responder") as pool:
        futures = [pool.submit(r.respond, conversations, batch_seed(run_seed, r.name, prompts[0].id))
                   for r in responders]
        answers = [f.result() for f in futures]

    records, in_flight = [], []
    for n, prompt in enumerate(prompts):
        responses = [{"responder": r.name, "sample": s, **answer}
                     for r, per_prompt in zip(responders, answers) for s, answer in enumerate(per_prompt[n])]
        texts = [r["text"] for r in responses]
        if prompt.verifiable:
            for response, correct in zip(responses, verify_responses(prompt, texts, oracle_options)):
                response["correct"] = correct
        pairs = []
        for i, j in candidate_pairs([r["responder"] for r in responses], pairing, policy):
            pair = {"a": i, "b": j, "decided_by": "oracle" if prompt.verifiable else "judge", "outcome": None,
                    "verdicts": [], "replies": [], "retried": 0}
            if texts[i] == texts[j]:
                pair["outcome"] = "identical"
            elif prompt.verifiable:
                pair["outcome"] = oracle_outcome(responses[i]["correct"], responses[j]["correct"])
            else:
                in_flight.append((pair, pair_judge.submit(prompt, texts[i], texts[j])))
            pairs.append(pair)
        records.append({"prompt_id": prompt.id, "source": prompt.source, "category": prompt.category,
                        "oracle": prompt.oracle, "messages": prompt.messages, "responses": responses,
                        "pairs": pairs, "seed": run_seed, "settings": settings})

    for pair, orders in in_flight:
        first, second = (future.result() for future in orders)
        pair["verdicts"] = [first["verdict"], second["verdict"]]
        pair["replies"] = [first["reply"], second["reply"]]
        pair["retried"] = int(first["retried"]) + int(second["retried"])
        pair["outcome"] = combine_orders(first["verdict"], second["verdict"])
    for record in records:
        record["selected"] = select_pairs(record["pairs"], pairing, len(record["responses"]))
    return records
