"""Greedy accuracy and operand-copy rate of SFT checkpoints on tiny arithmetic rows (a learning-curve probe).

    PYTHONPATH=src python bench/sft_probe.py --data VALIDATION.jsonl --n 300 outputs/x/sft/checkpoint-150 outputs/x/sft

For each checkpoint (e.g. the `checkpoint-N` folders of an SFT run with `save_strategy: steps`): the share of
rows answered right ("The answer is N") and the share whose answer starts by restating the operands exactly as
the worked solution does ("125 - 9:"), which is the skill that separates a late-learning seed from an early one.
Rows need `question`, `answer` and `solution` (data/tiny/*.jsonl's arithmetic layout). Choose settings on a
validation file, never on data/tiny/arithmetic_test.jsonl (the held-out set).
"""

from __future__ import annotations

import argparse
import json
import re

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def probe(path: str, rows: list[dict], batch_size: int = 100) -> tuple[float, float]:
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # generation continues every row from its own last token
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": row["question"]}],
                                             add_generation_prompt=True, tokenize=False) for row in rows]
    correct = copies = 0
    for start in range(0, len(rows), batch_size):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            output = model.generate(**batch, max_new_tokens=64, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        for row, ids in zip(rows[start:start + batch_size], output[:, batch["input_ids"].shape[1]:]):
            text = tokenizer.decode(ids, skip_special_tokens=True)
            copies += text.startswith(row["solution"].split(":")[0] + ":")
            found = re.search(r"answer is (-?\d+)", text)
            correct += bool(found and found.group(1) == row["answer"])
    return 100 * correct / len(rows), 100 * copies / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--data", required=True, help="JSONL rows with question, answer and solution")
    parser.add_argument("--n", type=int, default=300, help="the first N rows")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.data, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()][: args.n]
    for path in args.checkpoints:
        accuracy, copies = probe(path, rows)
        print(f"{path}: accuracy {accuracy:.1f}%  copies operands {copies:.1f}%  (n={len(rows)})", flush=True)


if __name__ == "__main__":
    main()
