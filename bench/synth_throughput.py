"""Rows/s of every synth workflow, and its kept/dropped/bad counts by reason (issue 17).

    python bench/synth_throughput.py --rows 8 --max_new_tokens 24          # transformers backend, CPU
    python bench/synth_throughput.py --standin                            # + the rule-based stand-in endpoint

The transformers rows use a freshly initialised tiny model (the tiny preset, narrowed as in the tests): it
measures the pipeline's cost per row around the model (prompts, parsing, sandbox, fsynced shards, export),
and its outputs are mostly unparseable, so its counts show the bad-row accounting rather than data quality.
The stand-in rows show the workflows' drop reasons on the built-in data.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from phi4_recipes.data.tiny import arithmetic_problems, code_documents, prose_documents
from phi4_recipes.jsonl import write_jsonl
from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.run_synth import main as run_synth
from phi4_recipes.standins.synth_server import StandinServer
from phi4_recipes.synth.options import SynthScriptArguments
from phi4_recipes.tokenizer import train_tiny_tokenizer


def inputs(n: int) -> dict[str, tuple[list[dict], dict]]:
    problems = arithmetic_problems("train", n)
    synthetic = [{"id": p["id"], "text": f"{p['question']} {p['solution']}"} for p in problems]
    questions = [{k: p[k] for k in ("id", "question", "answer")} for p in problems]
    return {
        "seed_curation": (synthetic[: n // 2] + prose_documents(n - n // 2), {"passage_words": 20}),
        "plurality": (questions, {"num_answers": 4}),
        "qa_extraction": (prose_documents(n, seed=1), {}),
        "rewrite": (synthetic, {"max_revisions": 2}),
        "instruction_reversal": (code_documents(n), {}),
        "validation": (questions, {"generate_responses": True}),
    }


def tiny_checkpoint(folder: Path) -> Path:
    tokenizer = train_tiny_tokenizer([p["solution"] for p in arithmetic_problems("train", 200)], vocab_size=400)
    torch.manual_seed(0)
    config = Phi4Config.from_preset("tiny", vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
                                    num_hidden_layers=2)
    Phi4ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def measure(workflow: str, rows: list[dict], options: dict, work: Path, **model) -> dict:
    data = write_jsonl(work / f"{workflow}-input.jsonl", rows)
    args = SynthScriptArguments(workflow=workflow, workflow_options=options, dataset_name=str(data),
                                output_dir=str(work / workflow), **model)
    started = time.perf_counter()
    report = run_synth(args)
    seconds = time.perf_counter() - started
    return {"workflow": workflow, "rows": len(rows), "seconds": round(seconds, 2),
            "rows_per_s": round(len(rows) / seconds, 2), "kept": report["kept_rows"],
            "dropped": report["dropped_by_reason"], "bad": report["bad_rows_by_reason"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=24)
    parser.add_argument("--standin", action="store_true", help="Also time the rule-based stand-in endpoint.")
    parser.add_argument("--standin_rows", type=int, default=200)
    cli = parser.parse_args()
    torch.set_num_threads(2)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = str(tiny_checkpoint(work / "tiny"))
        for workflow, (rows, options) in inputs(cli.rows).items():
            results.append({"backend": "transformers (tiny, CPU)", **measure(
                workflow, rows, options, work / "transformers", backend="transformers",
                model_name_or_path=checkpoint, max_new_tokens=cli.max_new_tokens)})
        if cli.standin:
            with StandinServer() as server:
                for workflow, (rows, options) in inputs(cli.standin_rows).items():
                    results.append({"backend": "stand-in endpoint (HTTP)", **measure(
                        workflow, rows, options, work / "standin", backend="openai", model_name_or_path="standin",
                        base_url=server.base_url)})
    print("| backend | workflow | rows | rows/s | kept | dropped by reason | bad by reason |")
    print("|---|---|---:|---:|---:|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['workflow']} | {r['rows']} | {r['rows_per_s']} | {r['kept']} | "
              f"{json.dumps(r['dropped'])} | {json.dumps(r['bad'])} |")


if __name__ == "__main__":
    main()
