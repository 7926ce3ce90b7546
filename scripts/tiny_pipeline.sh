#!/usr/bin/env bash
# The whole Phi-4 recipe at tiny scale on the built-in data, on a CPU: curation -> pretrain -> midtrain -> SFT ->
# Pivotal Token Search -> DPO on PTS pairs -> DPO on full-response pairs -> evaluation of every
# post-training stage -> leaderboard. Each stage reads the folder the previous one wrote under
# outputs/tiny (where recipes/tiny/ point).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=outputs/tiny
PYTHON=${PYTHON:-python}
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
step() { echo; echo "=== $* ==="; }
t0=$(date +%s)

step "0/8 curation: the built-in web pages -> text, language, quality, decontamination, dedup"
"$PYTHON" src/phi4_recipes/run_curate.py recipes/curate/tiny.yaml --output_dir "$OUT/curate"
step "0/8 synthetic data: plurality-filtered arithmetic (-> SFT) and rewritten exercises (-> pretraining)"
# No model exists yet, so a rule-based STAND-IN endpoint answers the prompts (synth/standin_server.py);
# point --base_url at `vllm serve <model>` for real synthetic data.
rm -f "$OUT/synth/.port"; mkdir -p "$OUT/synth"
"$PYTHON" -m phi4_recipes.synth.standin_server --port_file "$OUT/synth/.port" >/dev/null & standin=$!
trap 'kill $standin 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$OUT/synth/.port" ] && break; sleep 0.1; done
for workflow in plurality rewrite; do
    "$PYTHON" src/phi4_recipes/run_synth.py "recipes/synth/tiny/$workflow.yaml" \
        --base_url "http://127.0.0.1:$(cat "$OUT/synth/.port")/v1"
done
kill $standin; trap - EXIT
step "1/8 pretraining: tiny preset from scratch on the token-budgeted mixture"
"$PYTHON" src/phi4_recipes/run_pretrain.py recipes/tiny/pretrain.yaml
step "2/8 midtraining: 4x context, RoPE base 250,000, 30% long + 70% recall"
"$PYTHON" src/phi4_recipes/run_pretrain.py recipes/tiny/midtrain.yaml
step "3/8 SFT: ChatML arithmetic, assistant-only loss"
"$PYTHON" src/phi4_recipes/run_sft.py recipes/tiny/sft.yaml
step "4/8 Pivotal Token Search on the SFT model"
"$PYTHON" src/phi4_recipes/run_pts.py recipes/tiny/pts.yaml
step "5/8 DPO round 1 on the PTS pairs (exact single-token ids)"
"$PYTHON" src/phi4_recipes/run_dpo.py recipes/tiny/dpo_pts.yaml
step "5b/8 judge-guided pairs: SFT and DPO-PTS answer; the math oracle or the stand-in judge (both orders) decides"
rm -f "$OUT/judge_url"
"$PYTHON" -m phi4_recipes.judge.rule_judge_server --url-file "$OUT/judge_url" >/dev/null &
judge_pid=$!
trap 'kill $judge_pid 2>/dev/null || true' EXIT
while [ ! -s "$OUT/judge_url" ]; do kill -0 "$judge_pid"; sleep 0.1; done
"$PYTHON" src/phi4_recipes/run_judge.py recipes/tiny/judge.yaml --judge_base_url "$(cat "$OUT/judge_url")"
kill "$judge_pid"; trap - EXIT
step "6/8 DPO round 2 on the judge-guided pairs"
"$PYTHON" src/phi4_recipes/run_dpo.py recipes/tiny/dpo_judge.yaml
step "7/8 evaluation with lm-eval (chat template, offline tiny tasks)"
for stage in midtrain sft dpo_pts dpo_judge; do
    # Also puts the scores into the checkpoint's model card.
    "$PYTHON" src/phi4_recipes/run_eval.py recipes/tiny/eval.yaml --model_name_or_path "$OUT/$stage"
done
step "8/8 leaderboard across stages"
"$PYTHON" eval/leaderboard.py "$OUT"/{midtrain,sft,dpo_pts,dpo_judge}/eval/eval.json \
    --labels base,sft,dpo_pts,dpo_judge --out-dir "$OUT/leaderboard"
cat "$OUT/leaderboard/leaderboard.md"

question=$("$PYTHON" -c "import json; print(json.loads(open('data/tiny/arithmetic_test.jsonl').readline())['question'])")
echo; echo "Q: $question"
echo "A: $("$PYTHON" -m phi4_recipes.chat "$OUT/dpo_judge" "$question")"
echo; echo "tiny pipeline done in $(( $(date +%s) - t0 )) s; checkpoints, pairs, plots and leaderboard under $OUT/"
