"""Judge-guided preference pairs (Phi-4 DPO round 2): several responders answer, an oracle or an LLM judge picks.

    python src/phi4_recipes/run_judge.py recipes/tiny/judge.yaml
    python src/phi4_recipes/run_judge.py recipes/judge.yaml --executor slurm --tasks 8   # submits; rerun to export

Each prompt is answered by every responder (k samples each). Pairs are formed by the recipe's `pairing`
(all pairs of distinct responders by default, as the report describes). A prompt with a reference answer
is decided by its verify/ oracle (rejection sampling: correct vs incorrect, no judge call); any other
prompt's pairs go to the judge in both orders and are kept only when both orders agree.

Runs as a datatrove pipeline whose unit of work is a batch of `prompts_per_batch` prompts (fixed by the
input order, so the task count never changes a record). Writes `<output_dir>/shard-XXXXX-of-YYYYY.jsonl`
(one fsynced line per prompt, one file per task; a killed task, or one whose API died, redoes only the
unfinished batch) and `logs/`, then, once every task is complete, `pairs.jsonl` (the
`prompt`/`chosen`/`rejected` chat rows run_dpo.py trains on, with provenance), `judge_stats.json` and the
manifest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from phi4_recipes.configs import parse_recipe
from phi4_recipes.cpu_threads import configure_threads
from phi4_recipes.data.sources import load_source
from phi4_recipes.judge.batch import judge_batch
from phi4_recipes.judge.client import JudgeClient
from phi4_recipes.judge.export import export_dataset
from phi4_recipes.judge.labelling import PairJudge
from phi4_recipes.judge.options import JudgeScriptArguments
from phi4_recipes.judge.prompt_sets import builtin_rai_prompts, read_prompt_rows
from phi4_recipes.judge.responders import build_responders, close_responders
from phi4_recipes.judge.rubrics import load_rubric
from phi4_recipes.logs import setup_logging
from phi4_recipes.manifest import write_manifest
from phi4_recipes.producers import Producer, ProducerInput, WorkUnit, read_records, run_producer

RECORD_KEYS = ("prompt_id", "responses", "pairs", "selected", "settings")


class JudgeProducer(Producer):
    """A batch of prompts per unit: every responder answers the batch, then the oracle or the judge pairs them."""

    stage, id_key = "judge", "prompt_id"

    def __init__(self, args: JudgeScriptArguments):
        super().__init__(args)
        self._rubrics: dict[str, Any] | None = None

    def check_record(self, record: Any) -> None:
        if any(k not in record for k in RECORD_KEYS):
            raise ValueError(f"not a judge record (needs {list(RECORD_KEYS)})")

    def read_input(self) -> ProducerInput:
        args, prompts, sources = self.args, [], []
        if args.dataset_name:
            dataset = load_source(args.dataset_name, args.dataset_split, args.dataset_config)
            sources.append((args.dataset_name, dataset))
            prompts = read_prompt_rows(dataset, args.dataset_name, id_field=args.id_field,
                                       question_field=args.question_field, messages_field=args.messages_field,
                                       answer_field=args.answer_field, oracle=args.oracle,
                                       oracle_field=args.oracle_field, category_field=args.category_field,
                                       max_prompts=args.max_prompts)
        if args.include_rai_prompts:
            prompts += builtin_rai_prompts()
        # Responders are seeded per batch, so batches are cut from the whole input before tasks split it.
        size = args.prompts_per_batch
        units = [WorkUnit(batch[0].id, tuple(p.id for p in batch), batch)
                 for batch in (prompts[i : i + size] for i in range(0, len(prompts), size))]
        return ProducerInput(units, sources)

    def rubrics(self) -> dict[str, Any]:
        """The general and RAI rubrics, read once per process (the export names their versions)."""
        if self._rubrics is None:
            self._rubrics = {"general": load_rubric(self.args.rubric), "rai": load_rubric(self.args.rai_rubric)}
        return self._rubrics

    def open(self) -> None:
        args = self.args
        self.responders = build_responders(args.responder_specs)
        self.client = JudgeClient(args.judge_model, args.judge_base_url, api_key_env=args.judge_api_key_env,
                                  max_concurrency=args.max_concurrency, retry=args.judge_retry,
                                  max_new_tokens=args.judge_max_new_tokens, seed=args.seed)
        self.pair_judge = PairJudge(self.client, self.rubrics(), args.max_concurrency, args.seed)

    def work(self, unit: WorkUnit) -> list[dict]:
        args = self.args
        return list(judge_batch(unit.payload, self.responders, self.pair_judge, pairing=args.pairing,
                                policy=args.policy_responder, oracle_options=args.oracle_options,
                                run_seed=args.seed, settings=args.record_settings()))

    def close(self) -> None:
        self.pair_judge.close()
        self.client.close()
        close_responders(self.responders)


def main(args: JudgeScriptArguments) -> dict:
    started = time.perf_counter()
    logger = setup_logging()
    output_dir = Path(args.output_dir)

    # Judge every batch in a datatrove task (prompts already in a shard are skipped); slurm only submits.
    producer = JudgeProducer(args)
    rubrics = producer.rubrics()  # a bad rubric file fails here, before any task starts
    if not run_producer(producer, args, output_dir, args.record_settings()):
        logger.info("judge: submitted %d tasks (logs in %s); rerun this command once they finish to export",
                    args.tasks, output_dir / "logs")
        return {}

    # Export every shard, stats, manifest.
    rubric_versions = {category: rubric.version for category, rubric in rubrics.items()}
    records = producer.in_input_order(read_records(output_dir, producer.id_key, producer.check_record))
    stats = export_dataset(output_dir, records, judge_model=args.judge_model, rubric_versions=rubric_versions,
                           length_balance=args.length_balance)
    summary = {**stats, "wall_seconds": round(time.perf_counter() - started, 1)}
    logger.info("judge summary: kept %d pairs, %d ties (%d position disagreements), %d unparseable; %s",
                stats["pairs_kept"], stats["ties"], stats["position_disagreements"], stats["unparseable"],
                {name: entry["win_rate"] for name, entry in stats["win_rate"].items()})
    write_manifest(output_dir, stage="judge", recipe_path=args.recipe_path, configs={"script_args": args},
                   seed=args.seed,
                   inputs=producer.input().fingerprints(),
                   extra={"summary": summary})
    return summary


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    (script_args,) = parse_recipe(JudgeScriptArguments)
    main(script_args)
