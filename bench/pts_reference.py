"""PTS on a real model against an exhaustive reference, side by side with the best public implementation.

    python bench/pts_reference.py recipes/tiny/pts.yaml --model_name_or_path outputs/tiny_s1/sft \
        --max_questions 16 --reference_rollouts 256 --out bench/pts_reference_tiny.json

One run, one model, the same questions, oracle, responses and p_gap for every method:

* **ours**: the production path, ``search_question`` with the recipe's settings (filter, search and
  confirmation counted as finding pivots; its alternative-token trials for pairs counted apart);
* **peer**: the algorithm of codelion/pts (``pts run``, the most complete public PTS), re-implemented here on
  the same sampler at its CLI defaults: p(question) from ``--num-samples 50`` rollouts against
  ``[--min-prob, --max-prob]``, then recursive bisection at the token-count midpoint with a fixed 50 rollouts per
  prefix string (cached), a one-token segment moving p by ``--prob-threshold`` being a pivot. Its rollouts are
  those of ``pts run`` alone. The rejected token (for each positive pivot, the first of the top
  ``--num-candidates 10`` next tokens, 50 rollouts each, whose p falls by the threshold) is not part of
  ``pts run``: codelion/pts does it in ``pts export``, where it is broken, so here it is run and counted apart,
  as the peer's pair rollouts. Two courtesies make it cheaper than the real thing: the full response's
  success is the oracle's verdict (the peer samples it), and the empty prefix is estimated once (the peer keys
  the filter's estimate and the bisection's first one differently and samples both);
* **reference**: ``--reference_rollouts`` fresh rollouts (seeds neither method uses) at every prefix next to a
  token that can be pivotal. A token drawn with probability pi moves p by at most ``1 - pi`` (p(prefix) is a
  pi-weighted average over next tokens), so tokens with ``1 - pi < p_gap`` are not pivots; every other token
  of every chosen response is estimated, which makes the reference exhaustive over possible pivots. The same
  bound clips each reference change (noise alone can take an estimate past it). It holds for the
  distribution the sampler draws from, so the recipe must sample at temperature 1 and top_p 1.

Scoring, for each method's pivots: *strict* counts a pivot real when the reference's |Delta p| >= p_gap;
*tolerant* also credits one within 2 reference stderr of p_gap, and takes recall only over the reference
pivots that clear p_gap by 2 stderr (a borderline token is neither a required find nor a false one). Recall
covers the reference pivots of questions whose reference p(question) lies in [p_min, p_max]: one estimate per
question, pooling the empty-prefix rollouts of its responses (they estimate the same p), not "in band by either
response's estimate". Rollouts per real pivot divide a method's rollouts by its strict true pivots, like for like:
those that find pivots (ours: filter, search, confirmation; the peer: ``pts run``), and those plus the ones that
make pairs (ours: alternative tokens; the peer: ``pts export``'s rejected-token search).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from phi4_recipes.configs import parse_recipe
from phi4_recipes.generation import PTSSampler
from phi4_recipes.pts.config import SearchSettings
from phi4_recipes.pts.options import PTSScriptArguments
from phi4_recipes.pts.reference import find_pivotal_tokens_baseline
from phi4_recipes.pts.runner.question_search import (
    question_seed,
    sample_responses,
    search_question,
    strip_stop,
)
from phi4_recipes.pts.runner.questions import ResponseOracle, query_ids
from phi4_recipes.pts.stats import derive_seed
from phi4_recipes.run_pts import open_sampler, read_recipe_questions

PEER_SAMPLES = 50
PEER_CANDIDATES = 10


@dataclass
class Chosen:
    """One response both methods search, with the reference's estimates along it."""

    question_id: str
    index: int
    query: list[int]
    response: list[int]
    oracle: Callable[[list[int]], bool]
    seed: int
    logprobs: list[float]
    reference: dict[int, tuple[int, int]] = field(default_factory=dict)  # prefix length -> (successes, trials)


def count(sampler: PTSSampler, oracle, stops, query, prefix, n: int, seed: int) -> int:
    return sum(bool(oracle(list(prefix) + strip_stop(d, stops))) for d in sampler.sample(query, list(prefix), n, seed))


def reference_p(chosen: Chosen, position: int) -> tuple[float, float]:
    """p(success | response[:position]) and its stderr from the reference rollouts (exact at the end)."""
    if position == len(chosen.response):
        return float(chosen.oracle(chosen.response)), 0.0
    successes, trials = chosen.reference[position]
    p = successes / trials
    return p, math.sqrt(p * (1 - p) / trials)


def headroom(chosen: Chosen, position: int) -> float:
    """``1 - pi(token)``: the most the token at ``position`` can move p."""
    return 1.0 - math.exp(min(0.0, chosen.logprobs[position]))


def reference_delta(chosen: Chosen, position: int) -> tuple[float, float]:
    """The reference's change across the token and its stderr; the estimate is clipped to the exact bound
    ``|Delta p| <= 1 - pi``, which sampling noise alone can overshoot."""
    (pb, sb), (pa, sa) = reference_p(chosen, position), reference_p(chosen, position + 1)
    bound = headroom(chosen, position)
    return max(-bound, min(bound, pa - pb)), math.hypot(sb, sa)


def possible_pivots(chosen: Chosen, p_gap: float) -> list[int]:
    return [i for i in range(len(chosen.logprobs)) if headroom(chosen, i) >= p_gap]


def estimate_reference(chosen: Chosen, sampler, stops, n: int, p_gap: float) -> int:
    needed = {0} | {e for i in possible_pivots(chosen, p_gap) for e in (i, i + 1)}
    needed.discard(len(chosen.response))
    for position in sorted(needed - set(chosen.reference)):
        seed = derive_seed(chosen.seed, "exhaustive-reference", chosen.index, position)
        chosen.reference[position] = (count(sampler, chosen.oracle, stops, chosen.query,
                                            chosen.response[:position], n, seed), n)
    return len(needed) * n


def model_ranking(model) -> Callable[[list[int], list[int]], list[int]]:
    """Next-token ids of ``query + prefix``, most likely first (the peer's rejected-token candidates)."""

    def rank(query: list[int], prefix: list[int]) -> list[int]:
        with torch.inference_mode():
            ids = torch.tensor([query + prefix], device=next(model.parameters()).device)
            logits = model(input_ids=ids).logits[0, -1]
        return torch.topk(logits.float(), PEER_CANDIDATES + 1).indices.tolist()

    return rank


@dataclass
class PeerSearch:
    """codelion/pts on one response: its `pts run` (pivots, rollouts) and, apart, its `pts export` rejected tokens."""

    positions: list[int]
    rollouts: int
    rejected_search_rollouts: int
    pairs: int


def peer_search(chosen: Chosen, sampler, stops, rank_next, config: SearchSettings) -> PeerSearch:
    """codelion/pts at its CLI defaults on one response.

    :param rank_next: ``(query, prefix) -> token ids``, most likely next token first.
    """
    peer_config = config.with_seed(derive_seed(chosen.seed, "peer"))
    result = find_pivotal_tokens_baseline(chosen.query, chosen.response, sampler, chosen.oracle, PEER_SAMPLES,
                                          peer_config)
    rejected_rollouts, pairs = 0, 0
    for pivot in result.pivots:
        if pivot.p_after <= pivot.p_before:
            continue
        prefix = chosen.response[:pivot.position]
        ranked = rank_next(chosen.query, prefix)
        for candidate in [t for t in ranked if t != pivot.token_id][:PEER_CANDIDATES]:
            seed = derive_seed(peer_config.seed, "peer-rejected", pivot.position, candidate)
            p_alt = count(sampler, chosen.oracle, stops, chosen.query, prefix + [candidate], PEER_SAMPLES,
                          seed) / PEER_SAMPLES
            rejected_rollouts += PEER_SAMPLES
            if pivot.p_before - p_alt >= config.p_gap:
                pairs += 1
                break
    positions = [p.position for p in result.pivots] if result.status == "searched" else []
    return PeerSearch(positions, result.rollouts, rejected_rollouts, pairs)


def questions_in_band(chosen: list[Chosen], p_min: float, p_max: float) -> set[str]:
    """Questions whose reference p(question) is in [p_min, p_max]: the empty-prefix rollouts of all of a question's
    responses pooled into one estimate, since they all estimate the same p(question)."""
    pooled: dict[str, list[int]] = {}
    for c in chosen:
        successes, trials = c.reference[0]
        total = pooled.setdefault(c.question_id, [0, 0])
        total[0] += successes
        total[1] += trials
    return {question for question, (successes, trials) in pooled.items() if p_min <= successes / trials <= p_max}


def score(name: str, found: dict[tuple[str, int], list[int]], rollouts: int, chosen: list[Chosen],
          in_band: set[str], p_gap: float) -> dict:
    strict_true = tolerant_true = 0
    wrong = []
    for c in chosen:
        possible = set(possible_pivots(c, p_gap))
        for position in found.get((c.question_id, c.index), []):
            if position not in possible:  # |Delta p| <= 1 - pi < p_gap: false by the bound, no estimate needed
                wrong.append({"question_id": c.question_id, "response": c.index, "position": position,
                              "delta_ref": None, "headroom": round(headroom(c, position), 3)})
                continue
            delta, stderr = reference_delta(c, position)
            strict_true += abs(delta) >= p_gap
            tolerant_true += abs(delta) + 2 * stderr >= p_gap
            if abs(delta) < p_gap:
                wrong.append({"question_id": c.question_id, "response": c.index, "position": position,
                              "delta_ref": round(delta, 3), "stderr": round(stderr, 3)})
    reference = clear = hit = hit_clear = 0
    missed = []
    for c in chosen:
        if c.question_id not in in_band:
            continue
        mine = set(found.get((c.question_id, c.index), []))
        for position in possible_pivots(c, p_gap):
            delta, stderr = reference_delta(c, position)
            if abs(delta) < p_gap:
                continue
            reference += 1
            hit += position in mine
            if abs(delta) - 2 * stderr >= p_gap:
                clear += 1
                hit_clear += position in mine
            if position not in mine:
                missed.append({"question_id": c.question_id, "response": c.index, "position": position,
                               "delta_ref": round(delta, 3), "stderr": round(stderr, 3)})
    total = sum(len(v) for v in found.values())
    return {
        "method": name, "pivots": total, "true_strict": strict_true, "true_tolerant": tolerant_true,
        "precision_strict": round(strict_true / total, 3) if total else None,
        "precision_tolerant": round(tolerant_true / total, 3) if total else None,
        "reference_pivots": reference, "recall_strict": round(hit / reference, 3) if reference else None,
        "clear_reference_pivots": clear, "recall_tolerant": round(hit_clear / clear, 3) if clear else None,
        "rollouts": rollouts,
        "rollouts_per_real_pivot": round(rollouts / strict_true, 1) if strict_true else None,
        "false_pivots": wrong, "missed": missed,
    }


class MeasurementCache:
    """The reference's and the peer's measurements per searched response, kept in a JSON file so that changing our
    search reruns only our search (the other two depend on the model, the responses and the settings alone, which
    the file records and checks)."""

    def __init__(self, path: str | None, identity: dict) -> None:
        self.path, self.identity, self.entries = (Path(path) if path else None), identity, {}
        if self.path and self.path.exists():
            stored = json.loads(self.path.read_text())
            if stored["identity"] != identity:
                raise SystemExit(f"{self.path} holds measurements of other settings: {stored['identity']} "
                                 f"(this run: {identity}); pass another --cache")
            self.entries = stored["entries"]

    def get(self, chosen: Chosen) -> dict | None:
        return self.entries.get(f"{chosen.question_id}/{chosen.index}")

    def put(self, chosen: Chosen, peer: PeerSearch) -> None:
        self.entries[f"{chosen.question_id}/{chosen.index}"] = {
            "reference": {str(k): v for k, v in chosen.reference.items()}, "peer": asdict(peer)}

    def save(self) -> None:
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"identity": self.identity, "entries": self.entries}) + "\n")


def run(args: PTSScriptArguments, reference_rollouts: int, cache_path: str | None = None) -> dict:
    started = time.perf_counter()
    cache = MeasurementCache(cache_path, {
        "model": str(args.model_name_or_path), "reference_rollouts": reference_rollouts, "seed": args.seed,
        "questions": args.max_questions, "responses_per_question": args.responses_per_question,
        "max_new_tokens": args.max_new_tokens, "p_gap": args.p_gap, "band": [args.p_min, args.p_max]})
    if args.temperature != 1.0 or args.top_p != 1.0:
        raise SystemExit("the reference's headroom bound needs temperature 1 and top_p 1 (the model's own log-probs)")
    _, questions = read_recipe_questions(args)
    tokenizer, generator, sampler, stops = open_sampler(args)
    config = args.search_settings()
    rank_next = model_ranking(generator.model)
    ours_found: dict[tuple[str, int], list[int]] = {}
    peer_found: dict[tuple[str, int], list[int]] = {}
    chosen: list[Chosen] = []
    ours_rollouts = peer_rollouts = peer_rejected_rollouts = reference_total = peer_pairs = ours_pairs = 0
    # Where our rollouts went: per stream (search includes the question filter), and on questions the filter dropped.
    ours_by_stream: dict[str, int] = {}
    ours_filtered_rollouts = 0
    seconds = {"ours": 0.0, "peer": 0.0, "reference": 0.0}
    for question in tqdm(questions, desc="questions", unit="question"):
        oracle = ResponseOracle(tokenizer, question, args.oracle_options)
        query = query_ids(tokenizer, question, args.system_prompt)
        seed = question_seed(args.seed, question.id)
        # The responses search_question samples and chooses (same seed), whatever its filter then decides.
        sampled = sample_responses(query, sampler, oracle, seed=seed, count=args.responses_per_question,
                                   search_all=args.search_all_responses, stop_ids=stops)
        responses, indices = sampled.responses, sampled.chosen
        tick = time.perf_counter()
        record = search_question(question.id, query, sampler, oracle, search=config, run_seed=args.seed,
                                 responses_per_question=args.responses_per_question,
                                 search_all_responses=args.search_all_responses, stop_ids=stops,
                                 model=args.model_name_or_path, tokenizer=args.model_name_or_path, settings={})
        seconds["ours"] += time.perf_counter() - tick
        ours_rollouts += record.rollouts
        ours_filtered_rollouts += record.rollouts if record.status == "filtered" else 0
        for searched in record.responses:
            for stream, n in searched.result.rollouts_by_stream.items():
                ours_by_stream[stream] = ours_by_stream.get(stream, 0) + n
            ours_found[(question.id, searched.response_index)] = [p.position for p in searched.result.pivots]
            ours_pairs += len(searched.result.pairs)
        for index in indices:
            c = Chosen(question.id, index, query, responses[index], oracle, seed,
                       sampler.token_logprobs(query, responses[index]))
            chosen.append(c)
            tick = time.perf_counter()
            stored = cache.get(c)
            if stored:
                c.reference = {int(k): tuple(v) for k, v in stored["reference"].items()}
                peer = PeerSearch(**stored["peer"])
            else:
                peer = peer_search(c, sampler, stops, rank_next, config)
            peer_found[(question.id, index)] = peer.positions
            seconds["peer"] += time.perf_counter() - tick
            # The peer's filter sits on the first response (all responses share its p(question) estimate).
            peer_rollouts += peer.rollouts - (PEER_SAMPLES if index != indices[0] else 0)
            peer_rejected_rollouts += peer.rejected_search_rollouts
            peer_pairs += peer.pairs
            tick = time.perf_counter()
            reference_total += estimate_reference(c, sampler, stops, reference_rollouts, config.p_gap)
            seconds["reference"] += time.perf_counter() - tick
            cache.put(c, peer)
        cache.save()
    in_band = questions_in_band(chosen, config.p_min, config.p_max)
    generator.close()
    # Like for like: finding pivots (our filter, search and confirmation; the peer's `pts run`), then making pairs
    # (our alternative-token trials; the peer's `pts export` rejected-token search) counted apart.
    ours_pair_rollouts = ours_by_stream.get("pair", 0)
    results = [score("ours", ours_found, ours_rollouts - ours_pair_rollouts, chosen, in_band, config.p_gap),
               score("peer (codelion/pts defaults)", peer_found, peer_rollouts, chosen, in_band, config.p_gap)]
    for result, pairs, pair_rollouts in ((results[0], ours_pairs, ours_pair_rollouts),
                                         (results[1], peer_pairs, peer_rejected_rollouts)):
        result["pairs"], result["pair_rollouts"] = pairs, pair_rollouts
        result["rollouts_per_real_pivot_with_pairs"] = (
            round((result["rollouts"] + pair_rollouts) / result["true_strict"], 1) if result["true_strict"] else None)
    return {
        "model": args.model_name_or_path, "questions": len(questions), "responses": len(chosen),
        "questions_in_band_by_reference": len(in_band), "p_gap": config.p_gap,
        "reference_rollouts_per_prefix": reference_rollouts, "reference_rollouts": reference_total,
        "ours_vs_peer_rollouts_per_real_pivot": ratio(results, "rollouts_per_real_pivot"),
        "ours_vs_peer_rollouts_per_real_pivot_with_pairs": ratio(results, "rollouts_per_real_pivot_with_pairs"),
        "ours_rollouts_by_stream": dict(sorted(ours_by_stream.items())),
        "ours_rollouts_on_filtered_questions": ours_filtered_rollouts,
        "methods": results, "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def ratio(results: list[dict], key: str) -> float | None:
    ours, peer = results[0][key], results[1][key]
    return round(ours / peer, 3) if ours and peer else None


def markdown(summary: dict) -> str:
    lines = [f"{summary['model']}: {summary['questions']} questions, {summary['responses']} responses, "
             f"{summary['questions_in_band_by_reference']} in band by the reference; reference "
             f"{summary['reference_rollouts_per_prefix']} rollouts per prefix ({summary['reference_rollouts']:,} in "
             f"all); p_gap {summary['p_gap']}", "",
             "| method | pivots | precision strict / tolerant | recall strict / tolerant | search rollouts | "
             "per real pivot | pair rollouts | pairs | per real pivot with pairs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in summary["methods"]:
        lines.append(f"| {m['method']} | {m['pivots']} | {m['precision_strict']} / {m['precision_tolerant']} | "
                     f"{m['recall_strict']} / {m['recall_tolerant']} | {m['rollouts']:,} | "
                     f"{m['rollouts_per_real_pivot']} | {m['pair_rollouts']:,} | {m['pairs']} | "
                     f"{m['rollouts_per_real_pivot_with_pairs']} |")
    lines.append(f"\nours / peer rollouts per real pivot: {summary['ours_vs_peer_rollouts_per_real_pivot']} finding "
                 f"pivots (our filter, search and confirmation; the peer's `pts run`), "
                 f"{summary['ours_vs_peer_rollouts_per_real_pivot_with_pairs']} with the pairs (our alternative-token "
                 "trials; the peer's `pts export` rejected-token search)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--reference_rollouts", type=int, default=256)
    parser.add_argument("--out")
    parser.add_argument("--cache", help="JSON file of the reference's and the peer's measurements: read when it "
                                        "exists, written otherwise, so a change to our search reruns only ours")
    options, rest = parser.parse_known_args(argv)
    (args,) = parse_recipe(PTSScriptArguments, argv=rest)
    summary = run(args, options.reference_rollouts, options.cache)
    if options.out:
        Path(options.out).parent.mkdir(parents=True, exist_ok=True)
        Path(options.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(markdown(summary))


if __name__ == "__main__":
    main()
