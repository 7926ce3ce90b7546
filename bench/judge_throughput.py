"""Judged pairs per second against a local judge endpoint, with 1 vs 16 judge requests in flight.

Each pair is judged in both orders (two requests) through the same `PairJudge` run_judge uses, against the
rule-based stand-in judge (`phi4_recipes.standins.judge_server`) on 127.0.0.1. `--latency-s` delays each
answer the way a hosted LLM judge's generation time does; at 0 the numbers are the client's and the
HTTP server's own overhead on this machine.

    PYTHONPATH=src python bench/judge_throughput.py [--pairs 64] [--latency-s 0.05 0]
"""

from __future__ import annotations

import argparse
import time

from phi4_recipes.judge.client import JudgeClient
from phi4_recipes.judge.labelling import PairJudge, combine_orders
from phi4_recipes.judge.prompt_sets import JudgePrompt
from phi4_recipes.judge.rubrics import load_rubric
from phi4_recipes.standins.judge_server import RuleJudgeServer


def judged_pairs_per_second(base_url: str, pairs: int, concurrency: int) -> tuple[float, int]:
    """(pairs/s, pairs with an agreed winner) for `pairs` synthetic pairs at `concurrency` requests in flight."""
    client = JudgeClient("rule-judge", base_url, api_key_env="PHI4_BENCH_NO_KEY", max_concurrency=concurrency,
                         max_new_tokens=64)
    rubric = load_rubric("pairwise_v1")
    judge = PairJudge(client, {"general": rubric, "rai": rubric}, concurrency, seed=0)
    prompts = [JudgePrompt(f"q{i}", [{"role": "user", "content": f"Explain number {i} briefly."}]) for i in range(pairs)]
    started = time.perf_counter()
    futures = [judge.submit(p, f"Number {i} is a number.", f"Number {i} number number number.")
               for i, p in enumerate(prompts)]
    outcomes = [combine_orders(*(f.result()["verdict"] for f in orders)) for orders in futures]
    elapsed = time.perf_counter() - started
    judge.close()
    client.close()
    return pairs / elapsed, sum(o in ("a", "b") for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--latency-s", type=float, nargs="+", default=[0.05, 0.0])
    args = parser.parse_args()
    print("| judge latency | pairs | pairs/s at 1 in flight | pairs/s at 16 in flight | ratio |")
    print("|---|---|---|---|---|")
    for latency in args.latency_s:
        with RuleJudgeServer(latency_s=latency) as server:
            judged_pairs_per_second(server.base_url, 4, 4)  # warm-up: connections, imports
            one, kept_one = judged_pairs_per_second(server.base_url, args.pairs, 1)
            sixteen, kept_sixteen = judged_pairs_per_second(server.base_url, args.pairs, 16)
        assert kept_one == kept_sixteen == args.pairs, (kept_one, kept_sixteen)
        print(f"| {latency * 1000:.0f} ms | {args.pairs} | {one:.1f} | {sixteen:.1f} | {sixteen / one:.1f}x |")


if __name__ == "__main__":
    main()
