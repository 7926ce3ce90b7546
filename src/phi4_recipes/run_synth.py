"""Synthetic-data workflows: seed curation, plurality filtering, Q&A extraction, rewrite with self-revision,
instruction reversal for code, validation. One workflow per recipe (recipes/synth/).

    python src/phi4_recipes/run_synth.py recipes/synth/plurality.yaml
    python src/phi4_recipes/run_synth.py recipes/synth/rewrite.yaml --executor slurm --tasks 8   # rerun to export

Runs as a datatrove pipeline: writes `<output_dir>/shard-XXXXX-of-YYYYY.jsonl` (one line per input row,
fsynced, one file per task; a killed task restarts where it stopped) and `logs/`, then, once every task is
complete, merges the shards into `data.jsonl` (exact and near duplicates removed; `text` or `messages` plus
provenance), `dropped.jsonl`, `bad_rows.jsonl`, `report.json`, and the manifest.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import set_seed

from phi4_recipes.configs import parse_recipe
from phi4_recipes.cpu_threads import configure_threads
from phi4_recipes.data.near_dedup import MinHashParams
from phi4_recipes.data.sources import load_source
from phi4_recipes.generation import SamplingParams, build_generator
from phi4_recipes.logs import setup_logging
from phi4_recipes.manifest import write_manifest
from phi4_recipes.producers import Producer, ProducerInput, WorkUnit, run_producer
from phi4_recipes.synth import WORKFLOW_CLASSES, ChatModel, SourceResult, export_run
from phi4_recipes.synth.inputs import input_rows
from phi4_recipes.synth.options import SynthScriptArguments

RECORD_KEYS = ("id", "rows", "drops", "bad")  # SourceResult.to_json


def build_model(args: SynthScriptArguments) -> ChatModel | None:
    if not args.needs_model:
        return None
    kwargs = args.backend_options()
    tokenizer = None
    if args.backend != "openai":  # an endpoint applies its own chat template (/v1/chat/completions)
        from phi4_recipes.model_loading import get_tokenizer

        tokenizer = get_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    else:
        kwargs.setdefault("server_extensions", False)
    generator = build_generator(args.backend, args.model_name_or_path, tokenizer, **kwargs)
    params = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                            seed=args.seed)
    return ChatModel(generator, args.model_name_or_path, params, args.system_prompt)


class SynthProducer(Producer):
    """One input row per unit through the recipe's workflow; a row that cannot be read becomes a bad-row record."""

    stage, id_key = "synth", "id"

    def __init__(self, args: SynthScriptArguments):
        super().__init__(args)
        self.stage = f"synth/{args.workflow}"

    def check_record(self, record: Any) -> None:
        if any(k not in record for k in RECORD_KEYS):
            raise ValueError(f"not a synth result (needs {list(RECORD_KEYS)})")

    def read_input(self) -> ProducerInput:
        dataset = load_source(self.args.dataset_name, self.args.dataset_split, self.args.dataset_config)
        rows = input_rows(dataset, self.args.id_field, self.args.max_rows)
        return ProducerInput([WorkUnit(row.id, (row.id,), row) for row in rows], [(self.args.dataset_name, dataset)])

    def open(self) -> None:
        self.model = build_model(self.args)
        self.workflow = WORKFLOW_CLASSES[self.args.workflow](self.args.options, self.model, self.args.prompt_version,
                                                             self.args.seed)

    def work(self, unit: WorkUnit) -> list[dict]:
        item = unit.payload
        if item.problem:
            setup_logging().warning("synth %s: bad row %s: %s", self.args.workflow, item.id, item.problem)
            return [SourceResult(item.id, bad={"reason": item.problem, "detail": ""}).to_json()]
        return [self.workflow.run_row(item.id, item.row).to_json()]

    def close(self) -> None:
        if self.model is not None:
            self.model.generator.close()


def main(args: SynthScriptArguments) -> dict:
    started = time.perf_counter()
    set_seed(args.seed)
    logger = setup_logging()
    output_dir = Path(args.output_dir)
    workflow_class = WORKFLOW_CLASSES[args.workflow]
    output_format = args.output_format or workflow_class.formats[0]
    if output_format not in workflow_class.formats:
        raise SystemExit(f"{args.recipe_path}: workflow {args.workflow} writes {workflow_class.formats}, "
                         f"not {output_format}")

    # Every row through the workflow in a datatrove task (rows already in a shard are skipped); slurm only submits.
    producer = SynthProducer(args)
    if not run_producer(producer, args, output_dir, args.result_settings()):
        logger.info("synth %s: submitted %d tasks (logs in %s); rerun this command once they finish to export",
                    args.workflow, args.tasks, output_dir / "logs")
        return {}

    # Export every shard and the manifest.
    minhash = MinHashParams(args.minhash_shingle_words, args.minhash_bands, args.minhash_rows)
    report = export_run(output_dir, output_format, dedup=args.dedup, minhash=minhash)
    report.update(wall_seconds=round(time.perf_counter() - started, 2))
    logger.info("synth %s report: %s", args.workflow, report)
    write_manifest(output_dir, stage=f"synth/{args.workflow}", recipe_path=args.recipe_path,
                   configs={"script_args": args}, seed=args.seed,
                   inputs=producer.input().fingerprints(), extra={"report": report})
    return report


if __name__ == "__main__":
    configure_threads()  # before the recipe parser: it takes `--threads N` out of argv
    (script_args,) = parse_recipe(SynthScriptArguments)
    main(script_args)
