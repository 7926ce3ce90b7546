"""Shared-prefix sampling vs re-encoding the prefix, on the transformers backend.

    PYTHONPATH=src python bench/generation_prefix_cache.py [--prefix-len 512 --n 8 --new-tokens 32]

Three ways to draw n continuations of one prompt, timed in the same run on the same model:
  naive loop     n calls with n=1: the prefix is encoded n times, one sequence at a time
  naive batch    one call, share_prefix=False: the prefix is encoded n times, as n rows of one batch
  shared prefix  one call (the default): the prefix is encoded once, its KV cache copied to the n rows
Prints the median and best wall time of each (the three take turns, round by round) and the
speed-ups of the shared path.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phi4_recipes.generation import SamplingParams
from phi4_recipes.generation.transformers_backend import TransformersGenerator
from phi4_recipes.model import Phi4Config, Phi4ForCausalLM


def time_interleaved(runs: dict[str, callable], repeats: int) -> dict[str, list[float]]:
    """Wall times of each run, `repeats` rounds, the runs taking turns so load from other processes on a
    shared machine falls on all of them alike. One untimed warm-up round first."""
    times = {name: [] for name in runs}
    for round_index in range(repeats + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_index > 0:
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--prefix-len", type=int, default=512)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    # One thread by default: on a CPU shared with other jobs, more threads than free cores makes the
    # timings swing by 10x; 0 leaves torch's own default.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = Phi4Config.from_preset(args.preset)
    model = Phi4ForCausalLM(config).eval()
    prompt = torch.randint(16, config.vocab_size, (args.prefix_len,), generator=torch.Generator().manual_seed(0))
    prompt = prompt.tolist()
    params = SamplingParams(n=args.n, max_new_tokens=args.new_tokens, seed=0, ignore_eos=True)
    shared = TransformersGenerator(model, share_prefix=True)
    naive = TransformersGenerator(model, share_prefix=False)

    def naive_loop():
        return [naive.generate([prompt], SamplingParams(n=1, max_new_tokens=args.new_tokens, seed=j,
                                                        ignore_eos=True)) for j in range(args.n)]

    same = [c.token_ids for c in shared.generate([prompt], params)[0]] == [
        c.token_ids for c in naive.generate([prompt], params)[0]
    ]
    times = time_interleaved(
        {"naive loop": naive_loop, "naive batch": lambda: naive.generate([prompt], params),
         "shared prefix": lambda: shared.generate([prompt], params)},
        args.repeats,
    )
    median = {name: statistics.median(t) for name, t in times.items()}
    best = {name: min(t) for name, t in times.items()}

    print(f"preset={args.preset} params={sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
          f"prefix={args.prefix_len} n={args.n} new_tokens={args.new_tokens} repeats={args.repeats} "
          f"torch_threads={torch.get_num_threads()} device=cpu")
    print(f"shared-prefix samples identical to naive batch: {same}")
    print(f"{'':15s} {'median ms':>10s} {'best ms':>10s}")
    for name in times:
        print(f"{name:15s} {median[name] * 1000:10.1f} {best[name] * 1000:10.1f}")
    for baseline in ("naive loop", "naive batch"):
        print(f"speed-up of shared prefix vs {baseline}: {median[baseline] / median['shared prefix']:.2f}x median, "
              f"{best[baseline] / best['shared prefix']:.2f}x best")

if __name__ == "__main__":
    main()
