"""Synthetic-data workflows: seed curation, plurality filtering, Q&A extraction, rewrite with self-revision,
instruction reversal for code, validation. One workflow per recipe (recipes/synth/).

    python src/phi4_recipes/run_synth.py recipes/synth/plurality.yaml
    python src/phi4_recipes/run_synth.py recipes/synth/rewrite.yaml --num_shards 8 --shard_index 3

Writes `<output_dir>/shard-XXXXX-of-YYYYY.jsonl` (one line per input row, fsynced; a killed run restarts
where it stopped), then merges every shard in the folder into `data.jsonl` (exact and near duplicates
removed; `text` or `messages` plus provenance), `dropped.jsonl`, `bad_rows.jsonl`, `report.json`, and
the manifest.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm
from transformers import set_seed

from phi4_recipes.configs import SynthScriptArguments, parse_recipe
from phi4_recipes.data.near_dedup import MinHashParams
from phi4_recipes.data.sources import fingerprint, load_source
from phi4_recipes.generation import SamplingParams, build_generator
from phi4_recipes.io import setup_logging
from phi4_recipes.manifest import write_manifest
from phi4_recipes.synth import WORKFLOW_CLASSES, ChatModel, SourceResult, export_run
from phi4_recipes.synth.inputs import input_rows
from phi4_recipes.synth.shards import check_settings, open_shard, read_results, shard_of, shard_path


def build_model(args: SynthScriptArguments) -> ChatModel | None:
    if not args.needs_model:
        return None
    kwargs = dict(args.backend_kwargs or {})
    tokenizer = None
    if args.backend != "openai":  # an endpoint applies its own chat template (/v1/chat/completions)
        from phi4_recipes.model_loading import get_tokenizer

        tokenizer = get_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    else:
        kwargs.setdefault("server_extensions", False)
        if args.base_url:
            kwargs["base_url"] = args.base_url
    generator = build_generator(args.backend, args.model_name_or_path, tokenizer, **kwargs)
    params = SamplingParams(temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                            seed=args.seed)
    return ChatModel(generator, args.model_name_or_path, params, args.system_prompt)


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

    # Rows: this shard's share, minus those any shard in output_dir already holds.
    dataset = load_source(args.dataset_name, args.dataset_split, args.dataset_config)
    rows = input_rows(dataset, args.id_field, args.max_rows)
    mine = [r for r in rows if shard_of(r.id, args.num_shards) == args.shard_index]
    check_settings(output_dir, args.result_settings())
    writer = open_shard(shard_path(output_dir, args.shard_index, args.num_shards))
    done = {r["id"] for r in writer.rows} | {r["id"] for r in read_results(output_dir, skip=(writer.path,))}
    todo = [r for r in mine if r.id not in done]
    logger.info("synth %s shard %d/%d: %d of %d rows, %d already done%s", args.workflow, args.shard_index,
                args.num_shards, len(mine), len(rows), len(mine) - len(todo),
                f" (cut a {writer.truncated_bytes}-byte unfinished line)" if writer.truncated_bytes else "")

    model = build_model(args)
    workflow = workflow_class(args.options, model, args.prompt_version, args.seed)
    tally = Counter()
    with writer:
        progress = tqdm(todo, desc=f"synth {args.workflow} shard {args.shard_index}", unit="row")
        for item in progress:
            if item.problem:
                logger.warning("synth %s: bad row %s: %s", args.workflow, item.id, item.problem)
                result = SourceResult(item.id, bad={"reason": item.problem, "detail": ""})
            else:
                result = workflow.run_row(item.id, item.row)
            writer.append(result.to_json())
            tally.update(kept=len(result.rows), dropped=len(result.drops), bad=int(result.bad is not None))
            progress.set_postfix(tally, refresh=False)
    if model is not None:
        model.generator.close()

    # Export everything in output_dir (all shards found) and the manifest.
    minhash = MinHashParams(args.minhash_shingle_words, args.minhash_bands, args.minhash_rows)
    report = export_run(output_dir, output_format, dedup=args.dedup, minhash=minhash)
    report.update(rows_this_run=len(todo), wall_seconds=round(time.perf_counter() - started, 2))
    logger.info("synth %s report: %s", args.workflow, report)
    manifest_dir = output_dir if args.num_shards == 1 else output_dir / "manifests" / writer.path.stem
    write_manifest(manifest_dir, stage=f"synth/{args.workflow}", recipe_path=args.recipe_path,
                   configs={"script_args": args}, seed=args.seed, inputs=[fingerprint(args.dataset_name, dataset)],
                   extra={"report": report})
    return report


if __name__ == "__main__":
    (script_args,) = parse_recipe(SynthScriptArguments)
    main(script_args)
