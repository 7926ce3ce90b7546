"""What PTS found on SmolLM2-135M-Instruct, checked independently, and what DPO on it changed.

    python bench/pts_smollm2.py report outputs/smollm2/pts --reestimate 96 --out outputs/smollm2/report.json
    python bench/pts_smollm2.py accuracy models/smollm2-135m-instruct --limit 100 --out outputs/smollm2/acc_sft.json

`report` reads the run's shards and gives the p(question) histogram, pivots per searched question, rollouts
per confirmed pivot, each pivot in its context (the tokens before it, the token, and what followed), and
with `--reestimate N` an independent re-estimate of every pivot's change: N fresh rollouts from the prefix
before and N from the prefix after the pivot, on seeds the search never used (Delta p and its stderr).
`accuracy` is greedy accuracy (math oracle on the final number) on the held-out questions, with stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from phi4_recipes.data.sources import load_source
from phi4_recipes.generation import PTSSampler, SamplingParams, build_generator
from phi4_recipes.model_loading import get_tokenizer
from phi4_recipes.pts.runner.question_search import strip_stop
from phi4_recipes.pts.runner.questions import ResponseOracle, query_ids, read_questions
from phi4_recipes.pts.runner.records import read_question_records
from phi4_recipes.pts.stats import derive_seed
from phi4_recipes.tokenizer import stop_token_ids

SYSTEM_PROMPT = 'Solve the problem step by step. End with "The answer is N."'


def _questions(path: str, limit: int | None = None):
    return read_questions(load_source(path, "train", None), path, id_field="id", question_field="question",
                          answer_field="answer", oracle="math", max_questions=limit)


def pivot_context(tokenizer, response_ids: list[int], position: int, before: int = 12, after: int = 6) -> str:
    """`...before «pivot» after...`, as the report's example figure shows pivots."""
    left = tokenizer.decode(response_ids[max(0, position - before):position])
    token = tokenizer.decode(response_ids[position:position + 1])
    right = tokenizer.decode(response_ids[position + 1:position + 1 + after])
    return f"...{left}«{token}»{right}...".replace("\n", "\\n")


def _share(successes: int, trials: int) -> tuple[float, float]:
    p = successes / trials
    return p, math.sqrt(p * (1 - p) / trials)


def report(output_dir: str, questions_path: str, reestimate: int, max_new_tokens: int, max_batch_rows: int,
           backend: str = "transformers") -> dict:
    records = read_question_records(output_dir)
    if not records:
        raise SystemExit(f"{output_dir}: no shard records")
    model = records[0].model
    tokenizer = get_tokenizer(records[0].tokenizer, records[0].tokenizer)
    histogram = [0] * 10
    for record in records:
        if record.p_query is not None:
            histogram[min(9, int(record.p_query * 10))] += 1
    searched = [r for r in records if r.status == "searched"]
    pivots, rollouts = [], sum(r.rollouts for r in records)
    for record in searched:
        for response in record.responses:
            result = response.result
            for pivot in result.pivots:
                pivots.append({"question_id": record.question_id, "response_index": response.response_index,
                               "position": pivot.position, "response_tokens": len(result.response_ids),
                               "p_before": round(pivot.p_before, 3), "p_after": round(pivot.p_after, 3),
                               "delta_search": round(pivot.p_after - pivot.p_before, 3),
                               "context": pivot_context(tokenizer, result.response_ids, pivot.position),
                               "_query": result.query_ids, "_response": result.response_ids,
                               "_seed": result.seed})
    summary = {
        "model": model, "questions": len(records), "searched": len(searched),
        "filtered": sum(r.status == "filtered" for r in records),
        "p_query_histogram": histogram, "p_query": {r.question_id: r.p_query for r in records},
        "pivots": len(pivots), "pivots_per_searched_question": round(len(pivots) / max(1, len(searched)), 2),
        "rollouts": rollouts, "reused_rollouts": sum(s.result.reused_rollouts for r in records for s in r.responses),
        "rollouts_per_pivot": round(rollouts / len(pivots), 1) if pivots else None,
        "search_seconds": round(sum(r.seconds for r in records), 1),
    }
    if reestimate and pivots:
        started = time.perf_counter()
        generator = build_generator(backend, model, tokenizer,
                                    **({"max_batch_rows": max_batch_rows} if backend == "transformers" else {}))
        stops = stop_token_ids(tokenizer)
        sampler = PTSSampler(generator, SamplingParams(max_new_tokens=max_new_tokens, stop_token_ids=stops))
        questions = {q.id: q for q in _questions(questions_path)}
        for pivot in pivots:
            oracle = ResponseOracle(tokenizer, questions[pivot["question_id"]])
            counts = []
            for end in (pivot["position"], pivot["position"] + 1):
                prefix = pivot["_response"][:end]
                seed = derive_seed(pivot["_seed"], "independent-reestimate", end)
                draws = sampler.sample(pivot["_query"], prefix, reestimate, seed)
                counts.append(sum(oracle(prefix + strip_stop(d, stops)) for d in draws))
            (pb, sb), (pa, sa) = _share(counts[0], reestimate), _share(counts[1], reestimate)
            pivot.update(p_before_re=round(pb, 3), p_after_re=round(pa, 3), delta_re=round(pa - pb, 3),
                         delta_re_stderr=round(math.hypot(sb, sa), 3))
        p_gap = records[0].responses[0].result.config.p_gap
        survived = [p for p in pivots if abs(p["delta_re"]) >= p_gap]
        same_sign = [p for p in pivots if p["delta_re"] * p["delta_search"] > 0]
        summary.update(reestimate_rollouts_per_prefix=reestimate, p_gap=p_gap,
                       survive_p_gap=f"{len(survived)}/{len(pivots)}", same_sign=f"{len(same_sign)}/{len(pivots)}",
                       reestimate_seconds=round(time.perf_counter() - started, 1))
        generator.close()
    summary["pivot_table"] = [{k: v for k, v in p.items() if not k.startswith("_")} for p in pivots]
    return summary


def accuracy(model: str, questions_path: str, limit: int, max_new_tokens: int, batch: int,
             backend: str = "transformers") -> dict:
    started = time.perf_counter()
    tokenizer = get_tokenizer(None, model)
    generator = build_generator(backend, model, tokenizer, **({"max_batch_rows": batch} if backend == "transformers" else {}))
    questions = _questions(questions_path, limit)
    prompts = [query_ids(tokenizer, q, SYSTEM_PROMPT) for q in questions]
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens, stop_token_ids=stop_token_ids(tokenizer))
    correct = []
    for start in range(0, len(prompts), batch):
        outputs = generator.generate(prompts[start:start + batch], params)
        for question, completions in zip(questions[start:start + batch], outputs, strict=True):
            correct.append(bool(ResponseOracle(tokenizer, question)(completions[0].token_ids)))
    p, stderr = _share(sum(correct), len(correct))
    return {"model": model, "questions": questions_path, "n": len(correct), "accuracy": round(p, 4),
            "stderr": round(stderr, 4), "correct_ids": [q.id for q, c in zip(questions, correct, strict=True) if c],
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="transformers", help="transformers (CPU/GPU) or vllm (GPU)")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report")
    rep.add_argument("output_dir")
    rep.add_argument("--questions", default="outputs/smollm2/questions/search.jsonl")
    rep.add_argument("--reestimate", type=int, default=0, help="fresh rollouts per prefix (0: skip)")
    rep.add_argument("--max_new_tokens", type=int, default=80)
    rep.add_argument("--max_batch_rows", type=int, default=32)
    rep.add_argument("--out")
    acc = sub.add_parser("accuracy")
    acc.add_argument("model")
    acc.add_argument("--questions", default="outputs/smollm2/questions/heldout.jsonl")
    acc.add_argument("--limit", type=int, default=100)
    acc.add_argument("--max_new_tokens", type=int, default=80)
    acc.add_argument("--batch", type=int, default=25)
    acc.add_argument("--out")
    options = parser.parse_args(argv)
    if options.command == "report":
        result = report(options.output_dir, options.questions, options.reestimate, options.max_new_tokens, options.max_batch_rows,
                        options.backend)
    else:
        result = accuracy(options.model, options.questions, options.limit, options.max_new_tokens, options.batch,
                          options.backend)
    text = json.dumps(result, indent=2)
    if options.out:
        Path(options.out).parent.mkdir(parents=True, exist_ok=True)
        Path(options.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
