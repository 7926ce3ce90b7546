import json
from pathlib import Path

from phi4_recipes.data.tiny import arithmetic_problems, tiny_datasets, write_tiny_datasets

DATA = Path(__file__).resolve().parents[1] / "data" / "tiny"


def test_committed_files_match_the_generator(tmp_path):
    for name, path in write_tiny_datasets(tmp_path).items():
        assert path.read_bytes() == (DATA / f"{name}.jsonl").read_bytes(), name


def test_answers_are_right_and_splits_disjoint():
    train = arithmetic_problems("train", 600, seed=0)
    test = arithmetic_problems("test", 100, seed=1)
    assert not {p["question"] for p in train} & {p["question"] for p in test}
    for p in train + test:
        equation = p["solution"].split(" = ")[0].rsplit(" ", 3)[-3:]
        x, op, y = int(equation[0]), equation[1], int(equation[2])
        assert str({"+": x + y, "-": x - y, "*": x * y}[op]) == p["answer"]
        assert p["solution"].endswith(f"The answer is {p['answer']}.")
        assert p["messages"][1]["content"] == p["solution"]


def test_dpo_pairs_differ_only_in_the_final_answer():
    for pair in tiny_datasets()["dpo_pairs"]:
        chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
        assert chosen != rejected and chosen.rsplit("The answer is", 1)[0] == rejected.rsplit("The answer is", 1)[0]
        json.dumps(pair)
