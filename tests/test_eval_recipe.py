"""Eval recipes: YAML + command-line overrides, and clear errors naming the file and key."""

import os
from pathlib import Path

import pytest

from phi4_recipes.configs import RecipeError
from phi4_recipes.evaluation.lm_eval_runner import export_judge_settings
from phi4_recipes.evaluation.recipe import parse_eval_recipe
from phi4_recipes.evaluation.registry import load_registry, select_benchmarks

REPO = Path(__file__).resolve().parents[1]
RECIPES = [REPO / "recipes" / "eval" / "phi4.yaml", REPO / "recipes" / "tiny" / "eval.yaml"]


@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda p: p.parent.name)
def test_shipped_recipes_parse_and_name_registry_benchmarks(recipe_path):
    recipe = parse_eval_recipe([str(recipe_path), "--model", "some/model"])
    registry = load_registry(REPO / recipe.registry)
    assert [b.name for b in select_benchmarks(registry, recipe.benchmarks, str(recipe_path))] == recipe.benchmarks
    assert recipe.run_name == "phi4" if recipe_path.parent.name == "eval" else recipe.run_name == "eval"


def test_phi4_recipe_covers_the_eleven_report_benchmarks():
    recipe = parse_eval_recipe([str(RECIPES[0]), "--model", "microsoft/phi-4"])
    assert recipe.benchmarks == ["mmlu", "gpqa", "math", "humaneval", "mgsm", "simpleqa", "drop", "mmlu_pro",
                                 "humaneval_plus", "arenahard", "ifeval"]


def test_command_line_overrides_the_recipe_and_config_flag_is_equivalent():
    positional = parse_eval_recipe([str(RECIPES[1]), "--model", "m", "--limit", "3", "--backend=vllm"])
    flag = parse_eval_recipe(["--config", str(RECIPES[1]), "--model", "m", "--limit", "3", "--backend=vllm"])
    assert positional == flag
    assert (positional.limit, positional.backend, positional.max_gen_toks) == (3, "vllm", 32)
    listed = parse_eval_recipe([str(RECIPES[1]), "--model", "m", "--benchmarks", "[tiny_choice]"])
    assert listed.benchmarks == ["tiny_choice"]


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("benchmarks: [tiny_arithmetic]\nmax_new_tokens: 5\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml: unknown key 'max_new_tokens'.*max_gen_toks"):
        parse_eval_recipe([str(recipe), "--model", "m"])


def test_unknown_or_mistyped_command_line_key_is_an_error():
    with pytest.raises(RecipeError, match="command line: unknown key 'limt'"):
        parse_eval_recipe([str(RECIPES[1]), "--model", "m", "--limt", "3"])
    with pytest.raises(RecipeError, match="key 'limit' expects int"):
        parse_eval_recipe([str(RECIPES[1]), "--model", "m", "--limit", "many"])
    with pytest.raises(RecipeError, match="no model given"):
        parse_eval_recipe([str(RECIPES[1])])
    with pytest.raises(RecipeError, match="backend 'tgi'"):
        parse_eval_recipe([str(RECIPES[1]), "--model", "m", "--backend", "tgi"])


def test_unknown_benchmark_names_the_recipe():
    registry = load_registry(REPO / "eval" / "benchmarks.yaml")
    with pytest.raises(RecipeError, match=r"r\.yaml: benchmark\(s\) \['gsm8k'\] are not in the registry"):
        select_benchmarks(registry, ["math", "gsm8k"], "r.yaml")


def test_judge_graded_benchmarks_need_judge_settings(monkeypatch):
    registry = load_registry(REPO / "eval" / "benchmarks.yaml")
    recipe = parse_eval_recipe([str(RECIPES[1]), "--model", "m", "--benchmarks", "[simpleqa]"])
    with pytest.raises(RecipeError, match=r"\['simpleqa'\] are graded by an LLM judge"):
        export_judge_settings(recipe, [registry["simpleqa"]])
    for variable in ("PHI4_JUDGE_MODEL", "PHI4_JUDGE_BASE_URL", "PHI4_JUDGE_API_KEY_ENV"):
        monkeypatch.setenv(variable, "")  # recorded, so the variables the runner sets are undone after the test
        monkeypatch.delenv(variable)
    recipe.judge_model, recipe.judge_base_url = "judge", "http://127.0.0.1:9/v1"
    export_judge_settings(recipe, [registry["simpleqa"]])
    assert (os.environ["PHI4_JUDGE_MODEL"], os.environ["PHI4_JUDGE_BASE_URL"]) == ("judge", "http://127.0.0.1:9/v1")
