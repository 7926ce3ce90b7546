"""The n-gram index (data/ngrams.py) that curation and eval/decontaminate.py share, and curation's eval items."""

import pytest

from phi4_recipes.curate.decontaminate import load_eval_texts
from phi4_recipes.data.ngrams import build_ngram_index, contamination_of, find_contamination, normalize_words

QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips to her "
            "friends in May. How many clips did Natalia sell altogether in April and May?")
SHORT = "What is the capital city of Australia today?"


def test_normalisation_drops_markup_and_case():
    assert normalize_words("<b>Hello</b>, WORLD!  $x^2$") == ["b", "hello", "b", "world", "x", "2"]


def test_training_doc_containing_an_eval_item_is_found():
    index = build_ngram_index([QUESTION, SHORT], n=13, ids=["gsm-1", "geo-1"])
    doc = "Practice set. Problem 1: " + QUESTION.upper().replace(",", " ,") + " Answer: 72."
    clean = "Clips and friends are nice, but this document talks about gardening in May and April."
    hits = find_contamination([doc, clean, "Quiz: what is the capital city of Australia today? Canberra."], index,
                              ids=["doc", "clean", "quiz"])
    assert [h.query_id for h in hits] == ["doc", "quiz"]
    assert hits[0].matched_fraction("gsm-1", index) == 1.0
    assert set(hits[1].matched) == {"geo-1"}


def test_partial_overlap_fraction_from_the_eval_side():
    corpus_index = build_ngram_index(["Natalia sold clips to 48 of her friends in April, and then she sold half"], n=8)
    hit = contamination_of(QUESTION, corpus_index, "gsm-1")
    assert 0 < hit.overlap_fraction < 1
    assert hit.overlapping_ngrams == 8  # 15 indexed words -> 8 grams of 8, all inside the question


def test_texts_below_min_words_are_not_indexed():
    index = build_ngram_index(["too short", QUESTION], n=13)
    assert len(index) == 1
    with pytest.raises(ValueError):
        build_ngram_index([QUESTION], n=0)


def test_load_eval_texts_names_file_and_line(tmp_path):
    good = tmp_path / "gsm.jsonl"
    good.write_text('{"id": 7, "question": "q one"}\n\n{"prompt": "p two"}\n')
    assert load_eval_texts(good) == (["q one", "p two"], ["gsm/7", "gsm/3"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"answer": 3}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: no text field"):
        load_eval_texts(bad)
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"broken.jsonl:1: not valid JSON"):
        load_eval_texts(tmp_path / "broken.jsonl")
