#!/usr/bin/env bash
# The whole Phi-4 recipe at tiny scale on the built-in data, on a CPU. Each stage reads the folder the
# previous one wrote under $OUT (default outputs/tiny, where the recipes in recipes/tiny/ point).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/tiny}
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
if [ "$OUT" != "outputs/tiny" ]; then
    echo "recipes/tiny/* write to outputs/tiny; run without an argument" >&2
    exit 2
fi
step() { echo; echo "=== $* ==="; }
t0=$(date +%s)

step "1/5 pretraining (tiny preset from scratch, token-budgeted mixture)"
python src/phi4_recipes/run_pretrain.py recipes/tiny/pretrain.yaml
step "2/5 midtraining (4x context, RoPE base 250,000)"
python src/phi4_recipes/run_pretrain.py recipes/tiny/midtrain.yaml
step "3/5 SFT (ChatML arithmetic, assistant-only loss)"
python src/phi4_recipes/run_sft.py recipes/tiny/sft.yaml
step "4/5 DPO (full-response pairs)"
python src/phi4_recipes/run_dpo.py recipes/tiny/dpo_judge.yaml --model_name_or_path "$OUT/sft"
step "5/5 answer a held-out question with the chat template"
question=$(python -c "import json; print(json.loads(open('data/tiny/arithmetic_test.jsonl').readline())['question'])")
echo "Q: $question"
echo "A: $(python -m phi4_recipes.chat "$OUT/dpo_judge" "$question")"
echo; echo "tiny pipeline done in $(( $(date +%s) - t0 )) s; checkpoints under $OUT/"
