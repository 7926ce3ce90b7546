import json
import re
from pathlib import Path

from phi4_recipes.data.tiny import (
    TEST_PROBLEMS,
    arithmetic_problems,
    choice_rows,
    step_by_step,
    tiny_datasets,
    validation_problems,
    write_tiny_datasets,
)
from phi4_recipes.evaluation.contamination import overlap_report
from phi4_recipes.model_loading import tiny_tokenizer

DATA = Path(__file__).resolve().parents[1] / "data" / "tiny"
STEP = re.compile(r"^(\d+) ([-+]) (\d+): (\d+) [-+] (\d+) = (\d+), (carry|borrow) ([01])\. (\d+) [-+] ([01]) = (\d+)\.")


def test_committed_files_match_the_generator(tmp_path):
    for name, path in write_tiny_datasets(tmp_path).items():
        assert path.read_bytes() == (DATA / f"{name}.jsonl").read_bytes(), name


def test_every_step_is_right_and_the_carry_is_its_own_decision():
    data = tiny_datasets()
    for p in data["arithmetic_train"][:2000] + data["arithmetic_test"]:
        x, op, y, ones_x, ones_y, ones, kind, flag, tens_x, flag_again, tens = STEP.match(p["solution"]).groups()
        x, y, result = int(x), int(y), int(p["answer"])
        assert result == (x + y if op == "+" else x - y) and p["solution"].endswith(f"The answer is {result}.")
        assert kind == ("carry" if op == "+" else "borrow") and flag == flag_again
        assert int(tens) * 10 + int(ones) % 10 == result and int(tens_x) == x // 10
    assert step_by_step("+", 47, 8) == (55, "47 + 8: 7 + 8 = 15, carry 1. 4 + 1 = 5.")
    assert step_by_step("-", 152, 7) == (145, "152 - 7: 12 - 7 = 5, borrow 1. 15 - 1 = 14.")


def test_held_out_split_is_large_distinct_and_shares_no_13_gram_with_training_text():
    data = tiny_datasets()
    test = data["arithmetic_test"]
    assert len(test) == TEST_PROBLEMS >= 400  # one stderr <= 2.5 points at any accuracy
    computations = {tuple(p["solution"].split(":")[0].split()) for p in test}
    assert len(computations) == len(test), "each held-out item is its own computation"
    train_pairs = {tuple(p["solution"].split(":")[0].split()[::2]) for p in data["arithmetic_train"]}
    assert not train_pairs & {c[::2] for c in computations}, "no operand pair is in both splits"
    train_rows = data["arithmetic_train"] + data["sft_train"] + data["pretrain_synthetic"] + data["pretrain_web"]
    train_texts = [json.dumps(row) for row in train_rows]
    items = {"arithmetic": ([p["question"] for p in test], [p["id"] for p in test]),
             "choice": ([r["messages"][0]["content"] for r in choice_rows(test)], [p["id"] for p in test])}
    report = overlap_report(train_texts, [str(i) for i in range(len(train_texts))], items, n=13)
    assert report["arithmetic"]["indexed_items"] == len(test), "every question is long enough to be checked"
    assert report["arithmetic"]["contaminated_items"] == 0
    assert report["choice"]["contaminated_items"] == 0


def test_validation_split_is_new_computations_apart_from_both_training_and_held_out_items():
    data = tiny_datasets()
    validation, test = data["arithmetic_validation"], data["arithmetic_test"]
    assert validation == validation_problems(test) and len(validation) == 124

    def computation(p):
        return tuple(p["solution"].split(":")[0].split())

    held_out = {computation(p) for p in test}
    assert len({computation(p) for p in validation}) == len(validation), "each item is its own computation"
    assert not held_out & {computation(p) for p in validation}, "settings are never chosen on held-out items"
    train_pairs = {computation(p)[::2] for p in data["arithmetic_train"]}
    assert not train_pairs & {computation(p)[::2] for p in validation}, "no operand pair is seen in training"
    train_texts = [json.dumps(row) for row in data["arithmetic_train"] + data["sft_train"] + data["pretrain_synthetic"]]
    items = {"validation": ([p["question"] for p in validation], [p["id"] for p in validation])}
    report = overlap_report(train_texts, [str(i) for i in range(len(train_texts))], items, n=13)
    assert report["validation"]["indexed_items"] == len(validation)
    assert report["validation"]["contaminated_items"] == 0


def test_multiple_choice_rows_teach_a_letter_and_digits_are_single_tokens():
    rows = choice_rows(arithmetic_problems("test", 50, seed=1))
    for row in rows:
        assert sorted(set(row["options"])) == sorted(row["options"]) and len(row["options"]) == 4
        assert row["solution"].endswith(f"The answer is {row['answer']}.")
        assert row["options"]["ABCD".index(row["answer"])] in row["solution"]
    tokenizer = tiny_tokenizer()
    pieces = [tokenizer.decode([i]) for i in tokenizer("127 + 5 = 132")["input_ids"]]
    assert [p for p in pieces if p.strip().isdigit()] == list("1275132")


def test_dpo_pairs_differ_only_in_the_final_answer():
    for pair in tiny_datasets()["dpo_pairs"]:
        chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
        assert chosen != rejected and chosen.rsplit("The answer is", 1)[0] == rejected.rsplit("The answer is", 1)[0]
        json.dumps(pair)
