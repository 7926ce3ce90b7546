"""Pivotal Token Search over a question set: a datatrove pipeline of search results, then pairs for DPO round 1.

    python src/phi4_recipes/run_pts.py recipes/tiny/pts.yaml
    python src/phi4_recipes/run_pts.py recipes/pts.yaml --executor slurm --tasks 8   # submits; rerun to export

Writes `<output_dir>/shard-XXXXX-of-YYYYY.jsonl` (one line per question, fsynced, one file per datatrove
task; a killed task restarts where it stopped) and `logs/` (datatrove's per-task logs, stats, completion
markers), then, once every task is complete, merges the shards into `pairs.jsonl` (exact token ids, for
run_dpo.py), plots p(success) along a few searched responses into `plots/`, and writes the manifest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import set_seed

from phi4_recipes.configs import parse_recipe
from phi4_recipes.cpu_threads import configure_threads
from phi4_recipes.data.sources import load_source
from phi4_recipes.generation import Generator, PTSSampler, SamplingParams, build_generator
from phi4_recipes.logs import setup_logging
from phi4_recipes.manifest import write_manifest
from phi4_recipes.model_loading import get_tokenizer
from phi4_recipes.producers import Producer, ProducerInput, WorkUnit, run_producer
from phi4_recipes.pts.config import require_logprobs_of_sampling
from phi4_recipes.pts.options import PTSScriptArguments
from phi4_recipes.pts.runner.export import export_pairs
from phi4_recipes.pts.runner.plot import plot_records
from phi4_recipes.pts.runner.question_search import QUESTION_SEEDS, search_question
from phi4_recipes.pts.runner.questions import Question, ResponseOracle, query_ids, read_questions
from phi4_recipes.pts.runner.records import check_question_record, read_question_records
from phi4_recipes.tokenizer import stop_token_ids


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
    generator = build_generator(args.backend, args.model_name_or_path, tokenizer, **args.backend_options())
    stop_ids = stop_token_ids(tokenizer)
    params = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                            stop_token_ids=stop_ids)
    return tokenizer, generator, PTSSampler(generator, params), stop_ids


class PTSProducer(Producer):
    """One question per row: sample responses, search the chosen ones, one record per question."""

    stage, id_key = "pts", "question_id"

    def check_record(self, record: Any) -> None:
        check_question_record(record)

    def read_input(self) -> ProducerInput:
        dataset, questions = read_recipe_questions(self.args)
        return ProducerInput([WorkUnit(q.id, (q.id,), q) for q in questions], [(self.args.dataset_name, dataset)])

    def open(self) -> None:
        self.tokenizer, self.generator, self.sampler, self.stop_ids = open_sampler(self.args)

    def work(self, unit: WorkUnit) -> list[dict]:
        args, question = self.args, unit.payload
        oracle = ResponseOracle(self.tokenizer, question, args.oracle_options)
        query = query_ids(self.tokenizer, question, args.system_prompt)
        # each question's seed derives from args.seed and its id, so the task split never changes a record
        record = search_question(question.id, query, self.sampler, oracle, search=args.search_settings(),
                                 run_seed=args.seed, responses_per_question=args.responses_per_question,
                                 search_all_responses=args.search_all_responses, stop_ids=self.stop_ids,
                                 model=args.model_name_or_path,
                                 tokenizer=args.tokenizer_name_or_path or args.model_name_or_path,
                                 settings=args.result_settings())
        return [record.to_json()]

    def close(self) -> None:
        self.generator.close()


def main(args: PTSScriptArguments) -> dict:
    started = time.perf_counter()
    require_logprobs_of_sampling(args.temperature, args.top_p, args.use_logprobs)
    set_seed(args.seed)
    logger = setup_logging()
    output_dir = Path(args.output_dir)

    # Search every question in a datatrove task (rows already in a shard are skipped); slurm only submits.
    producer = PTSProducer(args)
    if not run_producer(producer, args, output_dir, args.result_settings()):
        logger.info("PTS: submitted %d tasks (logs in %s); rerun this command once they finish to export",
                    args.tasks, output_dir / "logs")
        return {}

    # Export every shard, plots, manifest.
    tokenizer = get_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    records = read_question_records(output_dir)
    summary = export_pairs(output_dir, records, tokenizer)
    plots = plot_records(records, tokenizer, output_dir / "plots", args.plot_max) if args.plot_max else []
    summary.update(wall_seconds=round(time.perf_counter() - started, 1), plots=len(plots))
    logger.info("PTS summary: %s", summary)
    write_manifest(output_dir, stage="pts", recipe_path=args.recipe_path,
                   configs={"script_args": args}, seed=args.seed,
                   inputs=producer.input().fingerprints(),
                   extra={"question_seeds": QUESTION_SEEDS, "summary": summary})
    return summary


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    (script_args,) = parse_recipe(PTSScriptArguments)
    main(script_args)
