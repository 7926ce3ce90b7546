"""Eval recipes: YAML + command-line overrides through parse_recipe, and clear errors naming the file and key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from phi4_recipes.configs import RecipeError, parse_recipe
from phi4_recipes.evaluation.lm_eval_runner import export_judge_settings
from phi4_recipes.evaluation.options import EvalArguments
from phi4_recipes.evaluation.registry import load_registry, select_benchmarks
from phi4_recipes.evaluation.results import run_name

REPO = Path(__file__).resolve().parents[1]
RECIPES = [REPO / "recipes" / "eval" / "phi4.yaml", REPO / "recipes" / "tiny" / "eval.yaml"]


def parse(*argv: str) -> EvalArguments:
    (args,) = parse_recipe(EvalArguments, argv=list(argv))
    return args


@pytest.mark.parametrize("recipe_path", RECIPES, ids=lambda p: p.parent.name)
def test_shipped_recipes_parse_and_name_registry_benchmarks(recipe_path):
    args = parse(str(recipe_path), "--model_name_or_path", "some/model")
    assert args.registry is None  # the packaged registry
    registry = load_registry()
    assert [b.name for b in select_benchmarks(registry, args.benchmarks, str(recipe_path))] == args.benchmarks
    assert run_name(args) == ("phi4" if recipe_path.parent.name == "eval" else "eval")


def test_phi4_recipe_covers_the_eleven_report_benchmarks():
    args = parse(str(RECIPES[0]), "--model_name_or_path", "microsoft/phi-4")
    assert args.benchmarks == ["mmlu", "gpqa", "math", "humaneval", "mgsm", "simpleqa", "drop", "mmlu_pro",
                               "humaneval_plus", "arenahard", "ifeval"]


def test_command_line_overrides_the_recipe_and_config_flag_is_equivalent():
    positional = parse(str(RECIPES[1]), "--model_name_or_path", "m", "--limit", "3", "--backend=vllm")
    flag = parse("--config", str(RECIPES[1]), "--model_name_or_path", "m", "--limit", "3", "--backend=vllm")
    assert positional == flag
    in_file = yaml.safe_load(RECIPES[1].read_text())["max_gen_toks"]  # not overridden: the recipe's value stays
    assert (positional.limit, positional.backend, positional.max_gen_toks) == (3, "vllm", in_file)
    listed = parse(str(RECIPES[1]), "--model_name_or_path", "m", "--benchmarks", "tiny_choice", "tiny_ifeval",
                   "--model_args", "{trust_remote_code: true}")
    assert listed.benchmarks == ["tiny_choice", "tiny_ifeval"] and listed.model_args == {"trust_remote_code": True}
    assert run_name(parse(str(RECIPES[1]), "--model_name_or_path", "m", "--run_name", "quick")) == "quick"


def test_unknown_or_mistyped_key_in_file_names_key_and_file(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("benchmarks: [tiny_arithmetic]\nmax_new_tokens: 5\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml: unknown key 'max_new_tokens'.*max_gen_toks"):
        parse(str(recipe), "--model_name_or_path", "m")
    recipe.write_text("benchmarks: [tiny_arithmetic]\nmodel: m\n")  # the key every other recipe spells out
    with pytest.raises(RecipeError, match=r"bad\.yaml: unknown key 'model'"):
        parse(str(recipe))
    recipe.write_text("benchmarks: [tiny_arithmetic]\nbackend: tgi\n")
    with pytest.raises(RecipeError, match=r"bad\.yaml: key 'backend' expects"):
        parse(str(recipe), "--model_name_or_path", "m")


def test_missing_model_or_bad_values_name_the_recipe():
    with pytest.raises(RecipeError, match=r"eval\.yaml.*no model given; pass --model_name_or_path"):
        parse(str(RECIPES[1]))
    with pytest.raises(RecipeError, match=r"eval\.yaml.*limit must be >= 1, got 0"):
        parse(str(RECIPES[1]), "--model_name_or_path", "m", "--limit", "0")
    with pytest.raises(RecipeError, match="command line: key 'benchmarks' lists no benchmark"):
        parse("--model_name_or_path", "m")


def test_unknown_or_mistyped_command_line_option_is_refused():
    with pytest.raises(RecipeError, match=r"command line: unknown option '--limt' \(did you mean 'limit'\?\)"):
        parse(str(RECIPES[1]), "--model_name_or_path", "m", "--limt", "3")
    for argv in (["--limit", "many"], ["--backend", "tgi"]):  # argparse's own refusal, naming the option
        with pytest.raises(SystemExit):
            parse(str(RECIPES[1]), "--model_name_or_path", "m", *argv)


def test_help_lists_every_option_with_its_help_text():
    result = subprocess.run([sys.executable, str(REPO / "src" / "phi4_recipes" / "run_eval.py"), "--help"],
                            capture_output=True, text=True, timeout=120, check=True)
    for option in ("--model_name_or_path", "--benchmarks", "--judge_base_url", "--max_gen_toks"):
        assert option in result.stdout
    assert "Cap on every benchmark's generation length" in " ".join(result.stdout.split())


def test_unknown_benchmark_names_the_recipe():
    with pytest.raises(RecipeError, match=r"r\.yaml: benchmark\(s\) \['gsm8k'\] are not in the registry"):
        select_benchmarks(load_registry(), ["math", "gsm8k"], "r.yaml")


def test_judge_graded_benchmarks_need_judge_settings(monkeypatch):
    registry = load_registry()
    args = parse(str(RECIPES[1]), "--model_name_or_path", "m", "--benchmarks", "simpleqa")
    with pytest.raises(RecipeError, match=r"eval\.yaml: benchmark\(s\) \['simpleqa'\] are graded by an LLM judge"):
        export_judge_settings(args, [registry["simpleqa"]])
    for variable in ("PHI4_JUDGE_MODEL", "PHI4_JUDGE_BASE_URL", "PHI4_JUDGE_API_KEY_ENV"):
        monkeypatch.setenv(variable, "")  # recorded, so the variables the runner sets are undone after the test
        monkeypatch.delenv(variable)
    args.judge_model, args.judge_base_url = "judge", "http://127.0.0.1:9/v1"
    export_judge_settings(args, [registry["simpleqa"]])
    assert (os.environ["PHI4_JUDGE_MODEL"], os.environ["PHI4_JUDGE_BASE_URL"]) == ("judge", "http://127.0.0.1:9/v1")
