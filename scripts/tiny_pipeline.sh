#!/usr/bin/env bash
# The whole Phi-4 recipe at tiny scale on a CPU: the stages are listed in recipes/tiny/pipeline.yaml and run
# by src/phi4_recipes/run_pipeline.py (curation -> synthetic data -> pretrain -> midtrain -> SFT -> PTS ->
# DPO round 1 -> judge-guided pairs -> DPO round 2 -> evaluation of every stage -> leaderboard).
# A rerun skips the stages that finished with the same inputs.
#   bash scripts/tiny_pipeline.sh [run_dir] [--seed N ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
OUT=${1:-outputs/tiny}
shift || true
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$PYTHON" src/phi4_recipes/run_pipeline.py recipes/tiny/pipeline.yaml --run_dir "$OUT" "$@"
question=$("$PYTHON" -c "import json; print(json.loads(open('data/tiny/arithmetic_test.jsonl').readline())['question'])")
echo; echo "Q: $question"
echo "A: $("$PYTHON" -m phi4_recipes.chat "$OUT/dpo_judge" "$question")"
