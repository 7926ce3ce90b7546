"""Quality classifier: training on labels, held-out precision/recall, save/load, annotation, bad files."""

import json

import numpy as np
import pytest

from phi4_recipes.curate.quality import (
    BUILTIN_LABELS,
    QualityClassifier,
    annotate,
    load_labeled_jsonl,
    split_examples,
    train_quality_classifier,
)


@pytest.fixture(scope="module")
def trained():
    return train_quality_classifier(load_labeled_jsonl(BUILTIN_LABELS), seed=0)


def test_builtin_set_has_disjoint_train_and_test(trained):
    examples = load_labeled_jsonl(BUILTIN_LABELS)
    train, test = split_examples(examples, 0.25, 0)
    assert len(train) == 240 and len(test) == 80
    assert {e.label for e in test} == {0, 1}
    assert not {e.text for e in train} & {e.text for e in test}


def test_held_out_precision_and_recall(trained):
    _, metrics = trained
    assert metrics.test_size == 80
    assert metrics.precision >= 0.8 and metrics.recall >= 0.8


def test_scores_rank_prose_above_spam_and_survive_save_load(trained, tmp_path):
    classifier, _ = trained
    texts = ["An enzyme speeds up a reaction by lowering its activation energy; the enzyme itself is unchanged.",
             "FREE SPINS!!! casino bonus click here now, limited offer, win big jackpot today!!!"]
    scores = classifier.score(texts)
    assert scores[0] > 0.5 > scores[1]
    classifier.save(tmp_path / "model.pkl")
    np.testing.assert_allclose(QualityClassifier.load(tmp_path / "model.pkl").score(texts), scores)


def test_random_split_when_rows_have_no_split():
    rows = [type(e)(e.text, e.label) for e in load_labeled_jsonl(BUILTIN_LABELS)]
    train, test = split_examples(rows, 0.25, seed=3)
    assert len(test) == 80 and sum(e.label for e in test) == 40
    assert split_examples(rows, 0.25, seed=3) == (train, test)


def test_annotate_with_label_fn_writes_trainable_jsonl(tmp_path):
    out = tmp_path / "labels.jsonl"
    texts = ["a careful explanation of fractions", "buy now cheap", "proof of the theorem", "click here!!!"]
    labelled = annotate(texts, lambda text: int("!" not in text and "buy" not in text), out)
    assert [e.label for e in labelled] == [1, 0, 1, 0]
    assert [json.loads(line)["label"] for line in out.read_text().splitlines()] == [1, 0, 1, 0]
    with pytest.raises(ValueError, match="#0"):
        annotate(["x"], lambda text: 3)


@pytest.mark.parametrize("line, message", [
    ('{"label": 1}', "key 'text'"),
    ('{"text": "x", "label": 2}', "key 'label'"),
    ('{"text": "x", "label": 1, "split": "dev"}', "key 'split'"),
    ("not json", "not valid JSON"),
])
def test_bad_label_files_name_file_line_and_key(tmp_path, line, message):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"text": "fine", "label": 0}\n' + line + "\n")
    with pytest.raises(ValueError, match=rf"labels.jsonl:2: .*{message}|labels.jsonl:2: {message}"):
        load_labeled_jsonl(path)


def test_training_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        QualityClassifier().fit(["a", "b"], [1, 1])
