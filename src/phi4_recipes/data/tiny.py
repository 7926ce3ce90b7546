"""Built-in tiny data: arithmetic word problems (a number below 200 plus or minus a digit) with step-by-step answers, and small text corpora.

Everything is generated from a seed, so the files under data/tiny/ can be rebuilt bit for bit
(`python -m phi4_recipes.data.tiny data/tiny`), and a test checks that the committed copy matches. The
same problems feed every tiny stage: plain-text pretraining, SFT conversations, PTS questions with
reference answers, a validation split to choose settings on, and held-out splits for evaluation.

Why this shape (issue 19): a solution is written digit by digit, so the decisions a small model has to get
right are single tokens (the operator read off the wording, a carry or borrow of 0 or 1, each digit), which
is what Pivotal Token Search looks for. The split is decided by the (x, y) operand pair, and every 13-word
window of a question contains both operands, so no held-out question shares a 13-gram with training text
(tests/test_tiny_data.py checks it with the project's decontamination code).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

NAMES = ["Ava", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jade", "Kai", "Lena"]
ITEMS = ["apples", "books", "coins", "stamps", "marbles", "pencils", "shells", "cards"]
LETTERS = "ABCD"
MC_INSTRUCTION = "Answer with the letter of the correct option."

# (operation, question template). Each has 13-16 words with x at word >= len - 13 and y at word <= 12, so
# every 13-word window holds both operands. The wording, not a symbol, says which operation it is.
TEMPLATES = [
    ("+", "How many {i} does {n} have after starting with {x} and getting {y} more?"),
    ("+", "A box holds {x} {i} and a bag holds {y} {i}. How many {i} in all?"),
    ("-", "How many {i} are left if {n} has {x} and gives away {y}?"),
    ("-", "On a shelf there were {x} {i} and then {y} were taken. How many remain?"),
]

SPLITS = ("train", "test")
TRAIN_PROBLEMS, TEST_PROBLEMS, TRAIN_CHOICE = 6000, 500, 2400
# + TRAIN_CHOICE multiple-choice = 4,800 SFT rows, 300 steps of 16 per epoch (recipes/tiny/sft.yaml runs 3). Half are
# multiple choice: with a fifth, the SFT model often miscopied the operands of a question followed by four
# options, and held-out arithmetic was 68.8% instead of 77.6% (seed 1, bench/RESULTS.md issue 19).
SFT_PROBLEMS = 2400


def _split_of(x: int, y: int) -> str:
    # A hash of the operand pair, not of the wording: a pair never appears in both splits, whatever template.
    return "test" if int(hashlib.sha256(f"{x},{y}".encode()).hexdigest(), 16) % 5 == 0 else "train"


def step_by_step(op: str, x: int, y: int) -> tuple[int, str]:
    """(result, worked solution) of x op y for x below 200 and a one-digit y: the ones column with its carry
    or borrow (a 0/1 token), then the tens. Short on purpose: every token costs CPU time in every tiny stage."""
    tens, ones = divmod(x, 10)
    if op == "+":
        carry = (ones + y) // 10
        steps = f"{ones} + {y} = {ones + y}, carry {carry}. {tens} + {carry} = {tens + carry}."
        result = x + y
    else:
        borrow = int(ones < y)
        steps = f"{ones + 10 * borrow} - {y} = {ones + 10 * borrow - y}, borrow {borrow}. {tens} - {borrow} = {tens - borrow}."
        result = x - y
    return result, f"{x} {op} {y}: {steps}"


def arithmetic_problems(split: str, n: int, seed: int = 0) -> list[dict]:
    """`n` distinct word problems of `split`: dicts with id, question, answer (digits), solution, messages."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(seed)
    problems, seen = [], set()
    while len(problems) < n:
        op, question_t = TEMPLATES[rng.randrange(len(TEMPLATES))]
        x, y = rng.randint(10, 199), rng.randint(2, 9)
        if op == "-" and y >= x:
            continue
        question = question_t.format(n=rng.choice(NAMES), i=rng.choice(ITEMS), x=x, y=y)
        # Held-out items are distinct computations, so that items are independent for the stderr.
        key = (op, x, y) if split == "test" else question
        if key in seen or _split_of(x, y) != split:
            continue
        seen.add(key)
        problems.append(_problem(split, op, x, y, question))
    return problems


def _problem(split: str, op: str, x: int, y: int, question: str) -> dict:
    result, steps = step_by_step(op, x, y)
    solution = f"{steps} The answer is {result}."
    return {
        "id": f"arith-{split}-{hashlib.sha1(question.encode()).hexdigest()[:10]}",
        "question": question,
        "answer": str(result),
        "solution": solution,
        "messages": [{"role": "user", "content": question}, {"role": "assistant", "content": solution}],
    }


def validation_problems(held_out: list[dict], seed: int = 2) -> list[dict]:
    """The validation split: every computation of the held-out operand pairs that the held-out items do not use.

    Settings (SFT steps, DPO learning rate, ...) are chosen on these, never on the held-out items. They share no
    operand pair with training text, like the held-out set, so they measure the same thing: computations the model
    never saw. There are 124 of them, one wording each (distinct computations, so items are independent).
    """
    used = {tuple(p["solution"].split(":")[0].split()) for p in held_out}
    rng = random.Random(seed)
    problems = []
    for op in "+-":
        for x in range(10, 200):
            for y in range(2, 10):
                if _split_of(x, y) != "test" or (str(x), op, str(y)) in used:
                    continue
                question_t = rng.choice([t for o, t in TEMPLATES if o == op])
                question = question_t.format(n=rng.choice(NAMES), i=rng.choice(ITEMS), x=x, y=y)
                problems.append(_problem("validation", op, x, y, question))
    return problems


def choice_options(answer: int, key: str) -> list[int]:
    """Four options: the answer and three near misses (a carry or a digit off), shuffled, seeded by `key`."""
    rng = random.Random(key)
    distractors: set[int] = set()
    while len(distractors) < len(LETTERS) - 1:
        candidate = answer + rng.choice([-11, -10, -9, -2, -1, 1, 2, 9, 10, 11])
        if candidate >= 0 and candidate != answer:
            distractors.add(candidate)
    options = [answer, *sorted(distractors)]
    rng.shuffle(options)
    return options


def choice_prompt(question: str, options: list[str]) -> str:
    lines = "\n".join(f"{letter}) {option}" for letter, option in zip(LETTERS, options))
    return f"{question}\n\n{lines}\n\n{MC_INSTRUCTION}"


def choice_rows(problems: list[dict]) -> list[dict]:
    """Multiple-choice rows of the problems: options, the correct letter and a solution ending in the letter."""
    rows = []
    for p in problems:
        options = choice_options(int(p["answer"]), p["id"])
        letter = LETTERS[options.index(int(p["answer"]))]
        prompt = choice_prompt(p["question"], [str(o) for o in options])
        solution = (p["solution"].rsplit(" The answer is", 1)[0]
                    + f" That is {p['answer']}, option {letter}. The answer is {letter}.")
        rows.append({"id": p["id"].replace("arith-", "choice-"), "question": p["question"],
                     "options": [str(o) for o in options], "answer": letter, "solution": solution,
                     "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": solution}]})
    return rows


def sft_conversations(problems: list[dict], choice_problems: list[dict]) -> list[dict]:
    """The SFT set: free-form problems and multiple-choice ones, interleaved deterministically."""
    rows = [{"id": p["id"], "messages": p["messages"]} for p in problems]
    rows += [{"id": r["id"], "messages": r["messages"]} for r in choice_rows(choice_problems)]
    return sorted(rows, key=lambda r: hashlib.sha1(r["id"].encode()).hexdigest())


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
        result = {"+": x + y, "-": x - y, "*": x * y}[op]
        body = f"def {ops[op]}(a, b):\n    return a {op} b\n\n\nprint({ops[op]}({x}, {y}))  # {result}\n"
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
    texts += [r["messages"][0]["content"] + " " + r["solution"] for r in choice_rows(problems[:100])]
    texts += [d["text"] for d in prose_documents(300, seed=1)] + [d["text"] for d in code_documents(200, seed=2)]
    return texts + ["system user assistant"] * 20  # the chat roles become single tokens


def tiny_datasets() -> dict[str, list[dict]]:
    """Every built-in tiny dataset, by file stem."""
    train = arithmetic_problems("train", TRAIN_PROBLEMS + TRAIN_CHOICE, seed=0)
    problems, choice_problems = train[:TRAIN_PROBLEMS], train[TRAIN_PROBLEMS:]
    test = arithmetic_problems("test", TEST_PROBLEMS, seed=1)
    return {
        "arithmetic_train": problems,
        "arithmetic_test": test,
        "arithmetic_validation": validation_problems(test),
        "sft_train": sft_conversations(problems[:SFT_PROBLEMS], choice_problems),
        # 1,500 worked problems for run_synth's rewrite (the stand-in rewrites ~30 per second) -> pretraining.
        "pretrain_synthetic": [{"id": p["id"], "text": p["question"] + " " + p["solution"]} for p in problems[:1500]],
        "pretrain_web": prose_documents(300, seed=1),
        "pretrain_code": code_documents(200, seed=2),
        "midtrain_long": long_documents(24, seed=3),
        "dpo_pairs": preference_pairs(problems[:200], seed=4),
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
