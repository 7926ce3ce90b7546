"""A mixture source that an earlier stage writes, missing because that stage has not run, fails naming the
mixture file, the source's key and the recipe that writes it (as a missing model folder does)."""

import os
from pathlib import Path

import pytest

from phi4_recipes.data.mixture import MixtureBuilder, load_mixture
from phi4_recipes.model_loading import tiny_tokenizer
from phi4_recipes.recipe_checks import RecipeError

REPO = Path(__file__).resolve().parents[1]


def test_missing_source_names_the_recipe_that_writes_it(tmp_path):
    recipes = tmp_path / "recipes"
    (recipes / "synth").mkdir(parents=True)
    (recipes / "synth" / "rewrite.yaml").write_text("workflow: rewrite\noutput_dir: outputs/run/synth/rewrite\n")
    (tmp_path / "web.jsonl").write_text('{"text": "a page"}\n')
    mixture = recipes / "mixture.yaml"
    mixture.write_text("phases:\n  pretrain:\n    token_budget: 100\n    sources:\n"
                       f"      - {{name: web, path: {tmp_path / 'web.jsonl'}, weight: 0.5}}\n"
                       "      - {name: synthetic, path: outputs/run/synth/rewrite/data.jsonl, weight: 0.5}\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # the source path is relative, as in the recipes
    try:
        with pytest.raises(RecipeError) as error:
            MixtureBuilder(load_mixture(mixture), tiny_tokenizer()).plan("pretrain")
    finally:
        os.chdir(cwd)
    assert str(error.value) == (
        f"{mixture}: key 'phases.pretrain.sources[1].path': outputs/run/synth/rewrite/data.jsonl does not exist; "
        "it is written by recipes/synth/rewrite.yaml: run that stage first")


def test_the_tiny_mixture_names_the_synth_recipe(tmp_path):
    """The README's first training command on a fresh clone: pretraining before synth has run."""
    cwd = os.getcwd()
    os.chdir(tmp_path)  # no outputs/ here
    try:
        with pytest.raises(RecipeError, match=r"outputs/tiny/synth/rewrite/data.jsonl does not exist; it is "
                                              r"written by recipes/synth/tiny/rewrite.yaml: run that stage first"):
            MixtureBuilder(load_mixture(REPO / "recipes/tiny/mixture.yaml"), tiny_tokenizer()).plan("pretrain")
    finally:
        os.chdir(cwd)
