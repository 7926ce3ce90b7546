"""Built-in tiny data: arithmetic word problems with checkable answers, and small text corpora.

Everything is generated from a seed, so the files under data/tiny/ can be rebuilt bit for bit
(`python -m phi4_recipes.data.tiny data/tiny`), and a test checks that the committed copy matches. The
same problems feed every tiny stage: plain-text pretraining, SFT conversations, PTS questions with
reference answers, and a held-out split for evaluation.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

NAMES = ["Ava", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jade", "Kai", "Lena"]
ITEMS = ["apples", "books", "coins", "stamps", "marbles", "pencils", "shells", "cards"]

# (operation, question template, solution template). {x} and {y} are the two numbers.
TEMPLATES = [
    ("+", "{n} has {x} {i}. {n} gets {y} more {i}. How many {i} does {n} have now?",
     "{n} starts with {x} {i} and gets {y} more, so {x} + {y} = {r}."),
    ("+", "A box holds {x} {i} and a bag holds {y} {i}. How many {i} are there in total?",
     "The box and the bag together hold {x} + {y} = {r} {i}."),
    ("-", "{n} has {x} {i} and gives away {y}. How many {i} are left?",
     "{n} gives away {y} of {x} {i}, so {x} - {y} = {r} are left."),
    ("-", "There were {x} {i} on a shelf. {y} were taken. How many {i} remain on the shelf?",
     "Taking {y} from {x} leaves {x} - {y} = {r} {i}."),
    ("*", "{n} buys {x} packs with {y} {i} in each pack. How many {i} does {n} buy?",
     "{x} packs of {y} {i} make {x} * {y} = {r} {i}."),
]

SPLITS = ("train", "test")


def _result(op: str, x: int, y: int) -> int:
    return {"+": x + y, "-": x - y, "*": x * y}[op]


def _split_of(key: str) -> str:
    # A hash of the problem's content, not its index, so a problem never lands in both splits.
    return "test" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 5 == 0 else "train"


def arithmetic_problems(split: str, n: int, seed: int = 0) -> list[dict]:
    """`n` distinct word problems of `split`: dicts with id, question, answer (digits), solution, messages."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(seed)
    problems, seen = [], set()
    while len(problems) < n:
        template_id = rng.randrange(len(TEMPLATES))
        op, question_t, solution_t = TEMPLATES[template_id]
        # Small numbers keep the task learnable by a 3M-parameter model in a minute, while leaving it unsure
        # enough (p(correct) between 0.2 and 0.8) for Pivotal Token Search to find pivots.
        x, y = (rng.randint(2, 5), rng.randint(2, 5)) if op == "*" else (rng.randint(1, 12), rng.randint(1, 9))
        if op == "-" and y >= x:
            x, y = y + x, y
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        fields = {"n": name, "i": item, "x": x, "y": y, "r": _result(op, x, y)}
        question = question_t.format(**fields)
        key = question  # some templates name nobody, so the question text is what must be unique
        if key in seen or _split_of(key) != split:
            continue
        seen.add(key)
        solution = solution_t.format(**fields) + f" The answer is {fields['r']}."
        problems.append(
            {
                "id": f"arith-{split}-{hashlib.sha1(key.encode()).hexdigest()[:10]}",
                "question": question,
                "answer": str(fields["r"]),
                "solution": solution,
                "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": solution}],
            }
        )
    return problems


def prose_documents(n: int, seed: int = 0, sentences: tuple[int, int] = (3, 8)) -> list[dict]:
    """Small plain-text documents standing in for web text: short facts about people and things."""
    rng = random.Random(seed)
    verbs = ["collects", "counts", "sorts", "trades", "paints", "keeps", "finds", "shares"]
    places = ["at school", "at home", "in the park", "at the market", "on the train", "in the garden"]
    docs = []
    for k in range(n):
        lines = [
            f"{rng.choice(NAMES)} {rng.choice(verbs)} {rng.randint(2, 90)} {rng.choice(ITEMS)} {rng.choice(places)}."
            for _ in range(rng.randint(*sentences))
        ]
        docs.append({"id": f"prose-{seed}-{k}", "text": " ".join(lines)})
    return docs


def code_documents(n: int, seed: int = 0) -> list[dict]:
    """Tiny Python functions that compute the same arithmetic, standing in for code data."""
    rng = random.Random(seed)
    ops = {"+": "add", "-": "subtract", "*": "multiply"}
    docs = []
    for k in range(n):
        op = rng.choice(list(ops))
        x, y = rng.randint(1, 50), rng.randint(1, 50)
        body = f"def {ops[op]}(a, b):\n    return a {op} b\n\n\nprint({ops[op]}({x}, {y}))  # {_result(op, x, y)}\n"
        docs.append({"id": f"code-{seed}-{k}", "text": body})
    return docs


def long_documents(n: int, seed: int = 0, min_sentences: int = 120) -> list[dict]:
    """Long plain-text documents for the tiny midtraining stage (long-context data)."""
    return [
        {"id": f"long-{seed}-{doc['id']}", "text": doc["text"]}
        for doc in prose_documents(n, seed=seed + 1, sentences=(min_sentences, 2 * min_sentences))
    ]


def preference_pairs(problems: list[dict], seed: int = 0) -> list[dict]:
    """Full-response DPO pairs: the correct solution against one with a wrong final answer."""
    rng = random.Random(seed)
    pairs = []
    for p in problems:
        wrong = str(int(p["answer"]) + rng.choice([-3, -2, -1, 1, 2, 3]))
        rejected = p["solution"].rsplit("The answer is", 1)[0] + f"The answer is {wrong}."
        pairs.append(
            {
                "id": p["id"],
                "prompt": [{"role": "user", "content": p["question"]}],
                "chosen": [{"role": "assistant", "content": p["solution"]}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "source": "tiny-arithmetic",
            }
        )
    return pairs


def tokenizer_corpus() -> list[str]:
    """The texts the tiny tokenizer is trained on (train splits only, never the held-out problems)."""
    problems = arithmetic_problems("train", 600, seed=0)
    texts = [p["question"] + " " + p["solution"] for p in problems]
    texts += [d["text"] for d in prose_documents(300, seed=1)] + [d["text"] for d in code_documents(200, seed=2)]
    return texts


def tiny_datasets() -> dict[str, list[dict]]:
    """Every built-in tiny dataset, by file stem."""
    train = arithmetic_problems("train", 600, seed=0)
    return {
        "arithmetic_train": train,
        "arithmetic_test": arithmetic_problems("test", 100, seed=1),
        "pretrain_synthetic": [{"id": p["id"], "text": p["question"] + " " + p["solution"]} for p in train],
        "pretrain_web": prose_documents(300, seed=1),
        "pretrain_code": code_documents(200, seed=2),
        "midtrain_long": long_documents(24, seed=3),
        "dpo_pairs": preference_pairs(train[:200], seed=4),
    }


def write_tiny_datasets(out_dir: str | Path) -> dict[str, Path]:
    """Write each dataset as `<out_dir>/<name>.jsonl`; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, rows in tiny_datasets().items():
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        paths[name] = path
    return paths


if __name__ == "__main__":
    for name, path in write_tiny_datasets(sys.argv[1] if len(sys.argv) > 1 else "data/tiny").items():
        print(f"{name}: {path}")
