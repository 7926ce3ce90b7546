"""The PTS question filter near its band edges, and p(question) rollout reuse, on exact synthetic processes.

    PYTHONPATH=src python bench/pts_filter.py [--tasks 60] [--seed 0]

Questions whose exact p(empty prefix) lies just inside the band ([0.2, 0.3] or [0.7, 0.8]) should be searched;
just outside ([0.1, 0.2) or (0.8, 0.9]) they should not. The old filter (one Wilson test capped at max_trials=64,
then the point estimate decides) is compared with the sequential one (doubling batches up to filter_max_trials
while the interval straddles an edge, undecided ones kept), first dropping on the same z = 1.5 interval it keeps on,
then dropping only on the stricter reject_z = 2 interval, with the 8 responses the runner samples before the search
counted towards p(question), and as now: the same with the cap at 32, undecided questions searched. Reuse: the
searched responses of one question share their p(question) rollouts through a DrawCache; the share of rollouts
saved is counted on two responses.
"""

from __future__ import annotations

import argparse

import numpy as np

from phi4_recipes.pts import PTSConfig, find_pivotal_tokens
from phi4_recipes.pts.reference.synthetic import SyntheticTask, level_process, make_task

OLD = {"filter_max_trials": 64, "keep_undecided": False}
FILTERS = (("old (cap 64, point estimate)", OLD, 0),
           ("sequential, cap 256, drops at z 1.5", {"reject_z": 1.5, "filter_max_trials": 256}, 0),
           ("sequential, cap 256, drops at z 2, 8 sampled responses counted", {"filter_max_trials": 256}, 8),
           ("sequential, cap 32, drops at z 2, 8 sampled responses counted (now)", {}, 8))
BANDS = {"inside, near an edge": [(0.2, 0.3), (0.7, 0.8)], "outside, near an edge": [(0.1, 0.19), (0.81, 0.9)]}


def near_edge_task(p_query: float, seed: int, horizon: int = 32) -> SyntheticTask:
    """A sharp-fork process (right vs wrong method at one step) whose exact p(empty prefix) is ``p_query``."""
    rng = np.random.default_rng(seed)
    fork = int(rng.integers(horizon // 4, 3 * horizon // 4))
    p_up, p_down = np.zeros((horizon - 1, 3)), np.zeros((horizon - 1, 3))
    q = (p_query - 0.03) / 0.94
    p_up[fork, 1], p_down[fork, 1] = q, 1.0 - q
    process = level_process(horizon, 3, 1, p_up, p_down, [0.03, 0.5, 0.97])
    return SyntheticTask("near_edge", seed, [2000, seed], process.sample_response(rng), process)


def sampled_verdicts(task: SyntheticTask, count: int, seed: int) -> list[bool]:
    """The oracle's verdicts on ``count`` responses sampled from the empty prefix, as the runner samples them."""
    rng, oracle = np.random.default_rng([seed, 7]), task.oracle()
    return [bool(oracle(task.process.sample_response(rng))) for _ in range(count)]


def filter_table(tasks: int, seed: int) -> list[str]:
    lines = ["| questions | filter | kept | filter rollouts / question |", "|---|---|---:|---:|"]
    for label, ranges in BANDS.items():
        for name, overrides, sampled in FILTERS:
            kept = spent = 0
            for i in range(tasks):
                low, high = ranges[i % 2]
                task = near_edge_task(low + (high - low) * ((i // 2) % 10 + 0.5) / 10, seed * 10_000 + i)
                config = PTSConfig(seed=seed * 10_000 + i, make_pairs=False, **overrides)
                result = find_pivotal_tokens(task.query_ids, task.response_ids, task.sampler(), task.oracle(),
                                             config, question_verdicts=sampled_verdicts(task, sampled, i))
                kept += result.status == "searched"
                # Rollouts drawn at the empty prefix (the responses sampled before the search are not rollouts).
                spent += next((e.trials for e in result.estimates if e.position == 0), 0) - sampled
            lines.append(f"| {label} | {name} | {kept}/{tasks} | {spent / tasks:.0f} |")
    return lines


def reuse_line(tasks: int, seed: int) -> str:
    total = saved = 0
    for i in range(tasks):
        task = make_task("several_pivots", seed * 10_000 + i, 32)
        other = task.process.sample_response(np.random.default_rng(i))
        draws: dict = {}
        for response in (task.response_ids, other):
            result = find_pivotal_tokens(task.query_ids, response, task.sampler(), task.oracle(),
                                         PTSConfig(seed=seed * 10_000 + i), draws=draws)
            total += result.rollouts + result.reused_rollouts
            saved += result.reused_rollouts
    return (f"Reuse over {tasks} questions x 2 searched responses: {saved:,} of {total:,} rollouts "
            f"({100 * saved / total:.1f}%) read from the shared cache instead of sampled again.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    print("\n".join(filter_table(options.tasks, options.seed)))
    print()
    print(reuse_line(options.tasks // 2, options.seed))


if __name__ == "__main__":
    main()
