#!/usr/bin/env bash
# ZeRO-3 and FSDP2 with bf16 on one GPU, the two configs tests/test_fsdp.py cannot run on the CPU: tiny SFT through
# run_sft.py under `accelerate launch` with recipes/accelerate_configs/{zero3,fsdp}.yaml as written (bf16,
# 1 process: NCCL gives each rank its own GPU), beside a plain single-process bf16 run of the same steps.
#   bash bench/fsdp_zero3_gpu.sh [OUT=outputs/fsdp_zero3_gpu]     # one device call, ~3-5 min on an H100/H200
# Needs the project with the `gpu` extra (trl, datasets, deepspeed) importable, and a CUDA GPU.
# Prints, per run: distributed type, FSDP units, logged losses, whether plain transformers loads the checkpoint,
# and the largest weight difference from the plain run. bf16 rounds each update, so expect ~1e-2, not the CPU
# test's 1e-4; what this checks is that both launch, shard, train and save a loadable checkpoint.
set -euo pipefail
PYTHON=${PYTHON:-python}
OUT=${1:-outputs/fsdp_zero3_gpu}
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
$PYTHON -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'"
$PYTHON -c "import deepspeed, trl, datasets" 2>/dev/null \
    || { echo "deepspeed/trl/datasets missing (pip install -e '.[gpu]')"; exit 2; }
rm -rf "$OUT"; mkdir -p "$OUT"

# The tiny preset (3.4M parameters, 4 Phi4DecoderLayers) with the tiny tokenizer, saved as a stage would save it.
$PYTHON - "$OUT/init" <<'PY'
import sys, torch
from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.model_loading import tiny_tokenizer
tokenizer = tiny_tokenizer()
torch.manual_seed(0)
Phi4ForCausalLM(Phi4Config.from_preset("tiny", vocab_size=len(tokenizer))).save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
PY

STEPS=(recipes/tiny/sft.yaml --model_name_or_path "$OUT/init" --max_steps 30 --warmup_steps 0 --logging_steps 5
       --dataset_max_rows 960 --per_device_train_batch_size 32 --bf16 true)
start=$(date +%s)
$PYTHON src/phi4_recipes/run_sft.py "${STEPS[@]}" --output_dir "$OUT/plain" > "$OUT/plain.log" 2>&1
echo "plain_seconds=$(( $(date +%s) - start ))" | tee "$OUT/timing.txt"
for config in fsdp zero3; do
    start=$(date +%s)
    status=0
    $PYTHON -m accelerate.commands.launch --config_file recipes/accelerate_configs/$config.yaml --num_processes 1 \
        src/phi4_recipes/run_sft.py "${STEPS[@]}" --output_dir "$OUT/$config" > "$OUT/$config.log" 2>&1 || status=$?
    echo "${config}_seconds=$(( $(date +%s) - start )) ${config}_exit=$status" | tee -a "$OUT/timing.txt"
    [ $status -eq 0 ] || tail -30 "$OUT/$config.log"
done

$PYTHON - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from transformers import AutoModelForCausalLM
out = Path(sys.argv[1])
plain = AutoModelForCausalLM.from_pretrained(out / "plain").state_dict()
for name in ("plain", "fsdp", "zero3"):
    folder = out / name
    if not (folder / "manifest.json").is_file():
        print(name, "no checkpoint: see", out / f"{name}.log")
        continue
    manifest = json.loads((folder / "manifest.json").read_text())
    losses = [round(e["loss"], 4) for e in manifest["log_history"] if "loss" in e]
    weights = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    diff = max((weights[k].float() - plain[k].float()).abs().max().item() for k in plain)
    print(name, {"distributed_type": manifest.get("distributed_type"), "fsdp_units": manifest.get("fsdp_units"),
                 "losses": losses, "max_abs_weight_diff_vs_plain": f"{diff:.2e}"})
PY
