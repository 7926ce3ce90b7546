"""GSM8K-style word problems with checkable numeric answers, for PTS on SmolLM2-135M-Instruct.

    python bench/pts_smollm2_questions.py --out outputs/smollm2/questions [--per_split 200] [--seed 0]

Writes `search.jsonl` (the questions PTS searches) and `heldout.jsonl` (accuracy before and after DPO), and with
`--validation N` a `validation.jsonl` of N more problems where settings are chosen (bench/dpo_effect.py). Every
problem is one of a few one- and two-step templates (add then subtract, groups of, change from a bill, rate
times days plus extra, "more than" then total) with small numbers, the range where a 135M model is right
some of the time. Decontamination: a held-out problem never shares its (template, numbers) with a search
problem, nor its text; the split is by problem identity, so no held-out answer was ever searched or trained on.
Validation problems are the next ones drawn after both splits, under the same rule against both; search and
held-out stay what they are without `--validation`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from pathlib import Path

NAMES = ["Tom", "Ana", "Ravi", "Mia", "Leo", "Sara", "Ben", "Yuki", "Omar", "Lena"]
ITEMS = ["apples", "marbles", "stickers", "pencils", "cookies", "stamps", "cards", "shells"]


def _two_step_add_sub(r: random.Random, name: str, item: str):
    a, b = r.randint(3, 20), r.randint(2, 15)
    c = r.randint(1, a + b - 1)
    return (f"{name} has {a} {item}. {name} buys {b} more and then gives {c} to a friend. "
            f"How many {item} does {name} have now?", a + b - c, (a, b, c))


def _groups(r: random.Random, name: str, item: str):
    a, b = r.randint(2, 9), r.randint(2, 9)
    return f"{name} buys {a} packs of {item}. Each pack has {b} {item}. How many {item} does {name} buy?", a * b, (a, b)


def _change(r: random.Random, name: str, item: str):
    price, count = r.randint(2, 9), r.randint(2, 5)
    bill = next(x for x in (10, 20, 50, 100) if x > price * count)
    return (f"A shop sells {item} for {price} dollars each. {name} buys {count} {item} and pays with a "
            f"{bill}-dollar bill. How many dollars of change does {name} get?", bill - price * count, (price, count, bill))


def _rate(r: random.Random, name: str, item: str):
    a, b, c = r.randint(2, 12), r.randint(2, 7), r.randint(1, 20)
    return (f"{name} reads {a} pages a day for {b} days, then reads {c} more pages. "
            f"How many pages does {name} read in all?", a * b + c, (a, b, c))


def _more_than(r: random.Random, name: str, item: str):
    other = NAMES[(NAMES.index(name) + 3) % len(NAMES)]
    a, b = r.randint(3, 25), r.randint(2, 12)
    return (f"{name} has {a} {item}. {other} has {b} more {item} than {name}. "
            f"How many {item} do they have together?", 2 * a + b, (a, b))


TEMPLATES = {"add_sub": _two_step_add_sub, "groups": _groups, "change": _change, "rate": _rate,
             "more_than": _more_than}


def _distinct(count: int, seed: int, templates: list[str] | None) -> list[dict]:
    """The first `count` distinct problems the seeded stream draws, as rows with `id`, `question`, `answer` (a
    number as text), `template`. A longer list starts with the shorter one."""
    r = random.Random(seed)
    seen, rows, tries = set(), [], 0
    while len(rows) < count:
        tries += 1
        if tries > 5_000 * count:
            raise ValueError(f"the templates {templates or sorted(TEMPLATES)} hold fewer than {count} "
                             "distinct problems; ask for fewer per split")
        template = r.choice(sorted(templates or TEMPLATES))
        name, item = r.choice(NAMES), r.choice(ITEMS)
        question, answer, numbers = TEMPLATES[template](r, name, item)
        identity = (template, numbers)
        if identity in seen or answer < 0:
            continue  # one problem identity lives in one split only
        seen.add(identity)
        uid = hashlib.sha256(question.encode()).hexdigest()[:10]
        rows.append({"id": f"smol-{template}-{uid}", "question": question, "answer": str(answer),
                     "template": template})
    return rows


def generate(per_split: int, seed: int, templates: list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """(search, heldout) rows with `id`, `question`, `answer` (a number as text), `template`."""
    rows = _distinct(2 * per_split, seed, templates)
    search, heldout = rows[:per_split], rows[per_split:]
    search_texts = {row["question"] for row in search}
    heldout = [row for row in heldout if row["question"] not in search_texts]
    return search, heldout


def generate_validation(per_split: int, seed: int, count: int, templates: list[str] | None = None) -> list[dict]:
    """`count` problems drawn after `generate`'s two splits (the same stream), none sharing an identity or a text
    with a search or held-out problem: a third split to choose settings on, so held-out is read once."""
    rows = _distinct(2 * per_split + count, seed, templates)
    taken = {row["question"] for row in rows[:2 * per_split]}
    return [row for row in rows[2 * per_split:] if row["question"] not in taken]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/smollm2/questions")
    parser.add_argument("--per_split", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--templates", nargs="*", choices=sorted(TEMPLATES),
                        help="only these templates (the CPU run keeps to one-step `groups`, where SmolLM2 is right "
                             "some of the time)")
    parser.add_argument("--validation", type=int, default=0,
                        help="also write validation.jsonl: this many more problems, disjoint from both splits")
    options = parser.parse_args(argv)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = dict(zip(("search", "heldout"), generate(options.per_split, options.seed, options.templates), strict=True))
    if options.validation:
        splits["validation"] = generate_validation(options.per_split, options.seed, options.validation, options.templates)
    for split, rows in splits.items():
        (out / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        print(f"{out / split}.jsonl: {len(rows)} questions")


if __name__ == "__main__":
    main()
