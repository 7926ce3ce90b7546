"""Pivotal Token Search efficiency: the improved search against the report's algorithm.

On synthetic answer processes whose p(correct | prefix) is known exactly
(``phi4_recipes.pts.reference.synthetic``), every method searches the same responses and is scored against
the exact truth: a token is a true pivot iff it moves the exact p by at least ``p_gap``.
Prints Markdown tables: precision, recall, rollouts and rollouts per true pivot found, for
ours (with and without token log-probs) and the baseline at N = 16, 64, 256, overall and per shape.

    PYTHONPATH=src python bench/pts_efficiency.py [--tasks-per-shape 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from phi4_recipes.pts import PTSConfig, PTSResult, find_pivotal_tokens
from phi4_recipes.pts.reference import find_pivotal_tokens_baseline
from phi4_recipes.pts.reference.synthetic import SHAPES, SyntheticTask, make_task

BASELINE_N = (16, 64, 256)


@dataclass
class Score:
    """Counts summed over tasks for one method."""

    true_positives: int = 0
    found: int = 0
    true: int = 0
    rollouts: int = 0
    seconds: float = 0.0
    pairs: int = 0
    pairs_right_way: int = 0
    misses: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.true_positives / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def rollouts_per_true_pivot(self) -> float:
        return self.rollouts / self.true_positives if self.true_positives else float("inf")


Method = Callable[[SyntheticTask, int], PTSResult]


def methods(p_gap: float, overrides: dict[str, object]) -> dict[str, Method]:
    def ours(logprobs: bool) -> Method:
        return lambda task, seed: find_pivotal_tokens(
            task.query_ids,
            task.response_ids,
            task.sampler(logprobs),
            task.oracle(),
            PTSConfig(p_gap=p_gap, seed=seed, **overrides),
        )

    def baseline(n: int) -> Method:
        return lambda task, seed: find_pivotal_tokens_baseline(
            task.query_ids, task.response_ids, task.sampler(False), task.oracle(), n, PTSConfig(p_gap=p_gap, seed=seed)
        )

    table: dict[str, Method] = {"ours": ours(True), "ours (no log-probs)": ours(False)}
    table.update({f"baseline N={n}": baseline(n) for n in BASELINE_N})
    return table


def score(task: SyntheticTask, result: PTSResult, p_gap: float, into: Score, seconds: float) -> None:
    truth = set(task.true_pivots(p_gap))
    found = set(result.pivot_positions)
    into.true_positives += len(truth & found)
    into.found += len(found)
    into.true += len(truth)
    into.rollouts += result.rollouts
    into.seconds += seconds
    for pair in result.pairs:
        into.pairs += 1
        p_chosen = task.process.success_probability(pair.prefix_ids + [pair.chosen_token_id])
        p_rejected = task.process.success_probability(pair.prefix_ids + [pair.rejected_token_id])
        into.pairs_right_way += p_chosen > p_rejected and pair.prefix_ids == task.response_ids[: pair.position]


def table(scores: dict[str, Score], reference: str) -> list[str]:
    ref = scores[reference]
    lines = [
        "| method | precision | recall | F1 | rollouts | rollouts / true pivot found | rollouts vs best baseline |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in scores.items():
        lines.append(
            f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.rollouts:,} | "
            f"{s.rollouts_per_true_pivot:,.0f} | {s.rollouts / ref.rollouts:.3f} |"
        )
    return lines


def best_baseline(scores: dict[str, Score]) -> str:
    """Highest F1 among baselines; ties go to the cheaper one."""
    names = [n for n in scores if n.startswith("baseline")]
    return max(names, key=lambda n: (round(scores[n].f1, 6), -scores[n].rollouts))


def _parse_value(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks-per-shape", type=int, default=40)
    parser.add_argument("--horizon", type=int, default=64)
    parser.add_argument("--p-gap", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="PTSConfig overrides for ours, e.g. max_trials=128"
    )
    args = parser.parse_args()
    overrides = {key: _parse_value(value) for key, value in (item.split("=", 1) for item in args.set)}

    runners = methods(args.p_gap, overrides)
    overall = {name: Score() for name in runners}
    per_shape = {shape: {name: Score() for name in runners} for shape in SHAPES}
    started = time.perf_counter()
    for shape in SHAPES:
        for index in range(args.tasks_per_shape):
            task = make_task(shape, args.seed * 100_000 + index, args.horizon)
            for name, run in runners.items():
                t0 = time.perf_counter()
                result = run(task, args.seed * 100_000 + index)
                seconds = time.perf_counter() - t0
                score(task, result, args.p_gap, overall[name], seconds)
                score(task, result, args.p_gap, per_shape[shape][name], seconds)

    best = best_baseline(overall)
    print(
        f"PTS efficiency: {args.tasks_per_shape} tasks x {len(SHAPES)} shapes, horizon {args.horizon}, "
        f"p_gap {args.p_gap}, seed {args.seed}, overrides {overrides or 'none'}; best baseline (F1, then fewer rollouts): {best}\n"
    )
    print("All shapes\n")
    print("\n".join(table(overall, best)))
    for shape, scores in per_shape.items():
        print(f"\n{shape} ({args.tasks_per_shape} tasks, {scores[best].true} true pivots)\n")
        print("\n".join(table(scores, best)))
    ours = overall["ours"]
    print(
        f"\nours: pairs built {ours.pairs}, chosen above rejected under the exact p: {ours.pairs_right_way}; "
        f"rollouts ours / {best} = {ours.rollouts / overall[best].rollouts:.3f}; "
        f"precision {ours.precision:.3f} vs {overall[best].precision:.3f}, recall {ours.recall:.3f} vs "
        f"{overall[best].recall:.3f}"
    )
    print(f"wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
