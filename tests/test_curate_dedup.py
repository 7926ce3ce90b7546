"""Exact and MinHash-LSH deduplication and the removal lists the pipeline exchanges between stages."""

from phi4_recipes.curate.dedup import read_removal_list, write_removal_lists
from phi4_recipes.data.near_dedup import (
    MinHashParams,
    exact_hash,
    find_duplicates,
    minhash_bands,
    signature_record,
)

BASE = ("The council approved the new budget on Monday after a long debate about school funding, road repairs "
        "and the cost of public transport. Members agreed to review spending again in the autumn, when updated "
        "tax forecasts will be available, and asked officials to publish a detailed breakdown of every line.")
NEAR = BASE.replace("on Monday", "on Tuesday")
OTHER = ("Photosynthesis converts light into chemical energy. Chlorophyll absorbs red and blue light, and the "
         "energy drives the synthesis of sugars from carbon dioxide and water in the chloroplasts of plant cells.")


def test_exact_hash_ignores_case_spacing_and_punctuation():
    assert exact_hash("Hello,   World!") == exact_hash("hello world")
    assert exact_hash("hello world") != exact_hash("hello there world")


def test_bands_are_deterministic_and_similarity_sensitive():
    params = MinHashParams()
    assert minhash_bands(BASE, params) == minhash_bands(BASE, params)
    assert len(minhash_bands(BASE, params)) == params.bands
    assert set(minhash_bands(BASE, params)) & set(minhash_bands(NEAR, params))
    assert not set(minhash_bands(BASE, params)) & set(minhash_bands(OTHER, params))
    assert minhash_bands("", params) == []


def test_find_duplicates_keeps_first_and_names_reason():
    params = MinHashParams()
    records = [signature_record("b", 1, 0, BASE, params), signature_record("a", 0, 0, NEAR, params),
               signature_record("c", 0, 1, BASE.upper(), params), signature_record("d", 1, 1, OTHER, params)]
    decisions = {d.id: d for d in find_duplicates(records)}
    assert set(decisions) == {"b", "c"}
    # Order is (rank, position): a, c, b, d. "c" is a near copy of "a"; "b" is an exact copy of "c".
    assert (decisions["c"].reason, decisions["c"].duplicate_of) == ("near_duplicate", "a")
    assert (decisions["b"].reason, decisions["b"].duplicate_of) == ("exact_duplicate", "c")
    exact_only = find_duplicates([signature_record("x", 0, 0, BASE, params), signature_record("y", 0, 1, BASE, params)])
    assert [(d.id, d.reason, d.duplicate_of) for d in exact_only] == [("y", "exact_duplicate", "x")]


def test_removal_lists_roundtrip(tmp_path):
    params = MinHashParams()
    records = [signature_record("x", 0, 0, BASE, params), signature_record("y", 2, 0, BASE, params)]
    counts = write_removal_lists(find_duplicates(records), tmp_path)
    assert counts == {"exact_duplicate": 1}
    assert read_removal_list(tmp_path, 2) == {"y": "exact_duplicate"}
    assert read_removal_list(tmp_path, 0) == {}
