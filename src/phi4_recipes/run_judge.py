"""Judge-guided preference pairs (Phi-4 DPO round 2): several responders answer, an oracle or an LLM judge picks.

    python src/phi4_recipes/run_judge.py recipes/tiny/judge.yaml
    python src/phi4_recipes/run_judge.py recipes/judge.yaml --num_shards 8 --shard_index 3   # one of 8 machines

Each prompt is answered by every responder (k samples each). Pairs are formed by the recipe's `pairing`
(all pairs of distinct responders by default, as the report describes). A prompt with a reference answer
is decided by its verify/ oracle (rejection sampling: correct vs incorrect, no judge call); any other
prompt's pairs go to the judge in both orders and are kept only when both orders agree.

Writes `<output_dir>/shard-XXXXX-of-YYYYY.jsonl` (one fsynced line per prompt; a killed run, or one whose
API died, redoes only the unfinished batch), then, from every shard in the folder, `pairs.jsonl` (the
`prompt`/`chosen`/`rejected` chat rows run_dpo.py trains on, with provenance), `judge_stats.json` and the
manifest.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from phi4_recipes.configs import JudgeScriptArguments, parse_recipe
from phi4_recipes.data.sources import fingerprint, load_source
from phi4_recipes.io import setup_logging
from phi4_recipes.judge.batch import judge_batch
from phi4_recipes.judge.client import JudgeClient
from phi4_recipes.judge.export import export_dataset
from phi4_recipes.judge.labelling import PairJudge
from phi4_recipes.judge.prompt_sets import builtin_rai_prompts, read_prompt_rows
from phi4_recipes.judge.responders import build_responders, close_responders
from phi4_recipes.judge.rubrics import load_rubric
from phi4_recipes.judge.shards import check_same_settings, open_shard, read_records, shard_of, shard_path
from phi4_recipes.manifest import write_manifest


def main(args: JudgeScriptArguments) -> dict:
    started = time.perf_counter()
    logger = setup_logging()
    output_dir = Path(args.output_dir)
    rubrics = {"general": load_rubric(args.rubric), "rai": load_rubric(args.rai_rubric)}
    settings = args.record_settings()

    # Prompts: this shard's share, in batches fixed by the shard's order; batches already written are skipped.
    dataset, prompts = None, []
    if args.dataset_name:
        dataset = load_source(args.dataset_name, args.dataset_split, args.dataset_config)
        prompts = read_prompt_rows(dataset, args.dataset_name, id_field=args.id_field,
                                   question_field=args.question_field, messages_field=args.messages_field,
                                   answer_field=args.answer_field, oracle=args.oracle, oracle_field=args.oracle_field,
                                   category_field=args.category_field, max_prompts=args.max_prompts)
    if args.include_rai_prompts:
        prompts += builtin_rai_prompts()
    mine = [p for p in prompts if shard_of(p.id, args.num_shards) == args.shard_index]
    writer = open_shard(shard_path(output_dir, args.shard_index, args.num_shards))
    already = writer.rows + read_records(output_dir, skip=(writer.path,))
    check_same_settings(already, settings, output_dir)
    done = {r["prompt_id"] for r in already}
    batches = [mine[i : i + args.prompts_per_batch] for i in range(0, len(mine), args.prompts_per_batch)]
    todo = [batch for batch in batches if any(p.id not in done for p in batch)]
    logger.info("judge shard %d/%d: %d of %d prompts, %d already done%s", args.shard_index, args.num_shards,
                len(mine), len(prompts), sum(p.id in done for p in mine),
                f" (cut a {writer.truncated_bytes}-byte unfinished line)" if writer.truncated_bytes else "")

    # Responders and judge, only when there is work (a finished shard re-exports without loading models).
    with writer:
        if todo:
            responders = build_responders(args.responder_specs)
            client = JudgeClient(args.judge_model, args.judge_base_url, api_key_env=args.judge_api_key_env,
                                 max_concurrency=args.max_concurrency, retry=args.judge_retry,
                                 max_new_tokens=args.judge_max_new_tokens, seed=args.seed)
            pair_judge = PairJudge(client, rubrics, args.max_concurrency, args.seed)
            progress = tqdm(total=len(mine), initial=len(mine) - sum(p.id not in done for p in mine),
                            desc=f"judge shard {args.shard_index}", unit="prompt")
            try:
                for batch in todo:
                    for record in judge_batch(batch, responders, pair_judge, pairing=args.pairing,
                                              policy=args.policy_responder, oracle_options=args.oracle_options,
                                              run_seed=args.seed, settings=settings):
                        if record["prompt_id"] not in done:
                            writer.append(record)
                            progress.update(1)
                    progress.set_postfix(pairs=sum(len(r["selected"]) for r in writer.rows))
            finally:
                progress.close()
                pair_judge.close()
                client.close()
                close_responders(responders)

    # Export everything in output_dir (all shards found), stats, manifest.
    rubric_versions = {category: rubric.version for category, rubric in rubrics.items()}
    stats = export_dataset(output_dir, read_records(output_dir), judge_model=args.judge_model,
                           rubric_versions=rubric_versions, length_balance=args.length_balance)
    summary = {**stats, "prompts_this_run": sum(p.id not in done for p in mine),
               "wall_seconds": round(time.perf_counter() - started, 1)}
    logger.info("judge summary: kept %d pairs, %d ties (%d position disagreements), %d unparseable; %s",
                stats["pairs_kept"], stats["ties"], stats["position_disagreements"], stats["unparseable"],
                {name: entry["win_rate"] for name, entry in stats["win_rate"].items()})
    manifest_dir = output_dir if args.num_shards == 1 else output_dir / "manifests" / writer.path.stem
    write_manifest(manifest_dir, stage="judge", recipe_path=args.recipe_path, configs={"script_args": args},
                   seed=args.seed, inputs=[fingerprint(args.dataset_name, dataset)] if dataset is not None else [],
                   extra={"summary": summary})
    return summary


if __name__ == "__main__":
    (script_args,) = parse_recipe(JudgeScriptArguments)
    main(script_args)
