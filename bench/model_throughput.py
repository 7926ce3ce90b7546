"""Forward+backward throughput and peak memory of Phi4ForCausalLM (Liger on) vs transformers' Phi3ForCausalLM.

    python bench/model_throughput.py --preset tiny --tokens 4096            # CPU: Liger is inactive, same math
    python bench/model_throughput.py --preset phi4-1b --tokens 4096 --dtype bfloat16   # CUDA: Liger kernels

Both models get the same weights and the same batch (one 4K-token sequence by default); the numbers are
printed as ratios against stock Phi-3 measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch
from transformers import Phi3Config, Phi3ForCausalLM

from phi4_recipes.model import Phi4Config, Phi4ForCausalLM, count_parameters


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(model, ids, steps: int, warmup: int, device) -> tuple[float, float]:
    """Tokens/s of forward+backward with labels, and peak memory (CUDA: allocated; CPU: process RSS)."""
    for _ in range(warmup):
        model(ids, labels=ids).loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        model(ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return ids.numel() * steps / elapsed, peak_memory_mb(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--json", help="also write the numbers to this file (bench/gpu_suite.sh reads it)")
    parser.add_argument("--attn_implementation", default="sdpa", choices=["sdpa", "eager", "flash_attention_2"],
                        help="both models' attention (flash_attention_2 needs the `flash` extra and CUDA)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    config = Phi4Config.from_preset(args.preset, max_position_embeddings=max(args.tokens, 4096))
    ours = Phi4ForCausalLM(config).to(device=device, dtype=dtype).train()
    stock_config = Phi3Config(**{k: v for k, v in config.to_dict().items() if k in Phi3Config.__dataclass_fields__})
    stock = Phi3ForCausalLM(stock_config).to(device=device, dtype=dtype).train()
    stock.load_state_dict(ours.state_dict())
    for model in (ours, stock):
        model.set_attn_implementation(args.attn_implementation)
    ids = torch.randint(0, config.vocab_size, (1, args.tokens), device=device)

    # Stock first on CPU so the RSS high-water mark is its own; our number can only be >= that there.
    stock_tps, stock_mem = measure(stock, ids, args.steps, args.warmup, device)
    del stock
    ours_tps, ours_mem = measure(ours, ids, args.steps, args.warmup, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device={name} preset={args.preset} params={count_parameters(ours) / 1e6:.1f}M tokens={args.tokens} "
          f"dtype={args.dtype} liger_active={device.type == 'cuda' and config.use_liger}")
    print("| model | tokens/s | peak memory (MB) | tokens/s ratio | memory ratio |")
    print("|---|---|---|---|---|")
    print(f"| HF Phi3ForCausalLM (baseline) | {stock_tps:,.0f} | {stock_mem:,.0f} | 1.00 | 1.00 |")
    print(f"| Phi4ForCausalLM | {ours_tps:,.0f} | {ours_mem:,.0f} | {ours_tps / stock_tps:.2f} | "
          f"{ours_mem / stock_mem:.2f} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": name, "preset": args.preset, "tokens": args.tokens, "dtype": args.dtype,
                       "attn_implementation": args.attn_implementation,
                       "liger_active": device.type == "cuda" and config.use_liger,
                       "stock_tokens_per_s": stock_tps, "stock_peak_mb": stock_mem,
                       "ours_tokens_per_s": ours_tps, "ours_peak_mb": ours_mem}, handle)


if __name__ == "__main__":
    main()
