"""Pivotal Token Search over a question set: shards of search results, then pairs for DPO round 1.

    python src/phi4_recipes/run_pts.py recipes/tiny/pts.yaml
    python src/phi4_recipes/run_pts.py recipes/pts.yaml --num_shards 8 --shard_index 3   # one of 8 machines
    python -m phi4_recipes.pts.runner.export outputs/phi4-14b/pts                         # after all shards

Writes `<output_dir>/shard-XXXXX-of-YYYYY.jsonl` (one line per question, fsynced; a killed run restarts
where it stopped), then merges every shard in the folder into `pairs.jsonl` (exact token ids, for
run_dpo.py), plots p(success) along a few searched responses into `plots/`, and writes the manifest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from datasets import Dataset
from tqdm.auto import tqdm
from transformers import set_seed

from phi4_recipes.configs import PTSScriptArguments, parse_recipe
from phi4_recipes.data.sources import fingerprint, load_source
from phi4_recipes.generation import Generator, PTSSampler, SamplingParams, build_generator
from phi4_recipes.io import setup_logging
from phi4_recipes.manifest import write_manifest
from phi4_recipes.model_loading import get_tokenizer
from phi4_recipes.pts.config import require_logprobs_of_sampling
from phi4_recipes.pts.runner.export import export_pairs
from phi4_recipes.pts.runner.plot import plot_records
from phi4_recipes.pts.runner.question_search import QUESTION_SEEDS, search_question, stop_token_ids
from phi4_recipes.pts.runner.questions import Question, ResponseOracle, query_ids, read_questions
from phi4_recipes.pts.runner.shards import (
    check_same_settings,
    open_shard,
    read_all_records,
    shard_of,
    shard_path,
)


def read_recipe_questions(args: PTSScriptArguments) -> tuple[Dataset, list[Question]]:
    """The recipe's question set, every row validated (``dataset_*``, the ``*_field`` keys, ``oracle``)."""
    dataset = load_source(args.dataset_name, args.dataset_split, args.dataset_config)
    questions = read_questions(dataset, args.dataset_name, id_field=args.id_field, question_field=args.question_field,
                               answer_field=args.answer_field, oracle=args.oracle, oracle_field=args.oracle_field,
                               max_questions=args.max_questions)
    return dataset, questions


def open_sampler(args: PTSScriptArguments) -> tuple[Any, Generator, PTSSampler, list[int]]:
    """The recipe's model as a PTS sampler: (tokenizer, generator to close, sampler, end-of-turn ids)."""
    tokenizer = get_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    generator = build_generator(args.backend, args.model_name_or_path, tokenizer, **(args.backend_kwargs or {}))
    stop_ids = stop_token_ids(tokenizer)
    params = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                            stop_token_ids=stop_ids)
    return tokenizer, generator, PTSSampler(generator, params), stop_ids


def main(args: PTSScriptArguments) -> dict:
    started = time.perf_counter()
    require_logprobs_of_sampling(args.temperature, args.top_p, args.use_logprobs)
    set_seed(args.seed)
    logger = setup_logging()
    output_dir = Path(args.output_dir)

    # Questions: this shard's share, minus those any shard file in output_dir already holds.
    dataset, questions = read_recipe_questions(args)
    mine = [q for q in questions if shard_of(q.id, args.num_shards) == args.shard_index]
    writer, written = open_shard(shard_path(output_dir, args.shard_index, args.num_shards))
    already = written + read_all_records(output_dir, skip=[writer.path])
    check_same_settings(already, args.result_settings(), output_dir)
    done = {r.question_id for r in already}
    todo = [q for q in mine if q.id not in done]
    logger.info("PTS shard %d/%d: %d of %d questions, %d already done%s", args.shard_index, args.num_shards,
                len(mine), len(questions), len(mine) - len(todo),
                f" (cut a {writer.truncated_bytes}-byte unfinished line)" if writer.truncated_bytes else "")

    # Model: any generation backend; the search only needs samples and token log-probs.
    tokenizer, generator, sampler, stop_ids = open_sampler(args)
    search = args.search_settings()  # each question's seed derives from args.seed and its id
    settings = args.result_settings()

    with writer, generator:
        progress = tqdm(todo, desc=f"PTS shard {args.shard_index}", unit="question")
        for question in progress:
            oracle = ResponseOracle(tokenizer, question, args.oracle_options)
            query = query_ids(tokenizer, question, args.system_prompt)
            record = search_question(question.id, query, sampler, oracle, search=search, run_seed=args.seed,
                                     responses_per_question=args.responses_per_question,
                                     search_all_responses=args.search_all_responses, stop_ids=stop_ids,
                                     model=args.model_name_or_path,
                                     tokenizer=args.tokenizer_name_or_path or args.model_name_or_path,
                                     settings=settings)
            writer.append(record.to_json())
            progress.set_postfix(status=record.status, pivots=record.pivot_count)

    # Export everything in output_dir (all shards found), plots, manifest.
    summary = export_pairs(output_dir, tokenizer)
    records = read_all_records(output_dir)
    plots = plot_records(records, tokenizer, output_dir / "plots", args.plot_max) if args.plot_max else []
    summary.update(questions_this_run=len(todo), wall_seconds=round(time.perf_counter() - started, 1),
                   plots=len(plots))
    logger.info("PTS summary: %s", summary)
    manifest_dir = output_dir if args.num_shards == 1 else output_dir / "manifests" / writer.path.stem
    write_manifest(manifest_dir, stage="pts", recipe_path=args.recipe_path,
                   configs={"script_args": args}, seed=args.seed, inputs=[fingerprint(args.dataset_name, dataset)],
                   extra={"question_seeds": QUESTION_SEEDS, "summary": summary})
    return summary


if __name__ == "__main__":
    (script_args,) = parse_recipe(PTSScriptArguments)
    main(script_args)
