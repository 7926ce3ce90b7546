"""Every bad input of the reliability review gets an error that names the file, key or row (issue 13, section 5)."""

import re
from pathlib import Path

import pytest
from datasets import Dataset

from phi4_recipes.configs import (
    ModelConfig,
    RecipeError,
    ScriptArguments,
    SFTConfig,
    parse_recipe,
)
from phi4_recipes.curate.decontaminate import load_eval_texts
from phi4_recipes.curate.options import CurateConfig
from phi4_recipes.data.sources import load_source, require_chat_messages
from phi4_recipes.model_loading import get_tokenizer

REPO = Path(__file__).resolve().parents[1]
SFT_RECIPE = REPO / "recipes" / "tiny" / "sft.yaml"


def _write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def empty_jsonl(tmp):
    load_source(str(_write(tmp, "empty.jsonl", "")))


def malformed_jsonl_line(tmp):
    load_source(str(_write(tmp, "broken.jsonl", '{"text": "ok"}\n{"text": "cut off\n')))


def messages_as_a_string(tmp):
    path = _write(tmp, "chat.jsonl", '{"messages": "hello"}\n')
    require_chat_messages(load_source(str(path)), str(path))


def message_without_content(tmp):
    require_chat_messages(Dataset.from_dict({"messages": [[{"role": "user", "content": "hi"}], [{"role": "user"}]]}),
                          "chat.jsonl")


def folder_that_is_not_a_checkpoint(tmp):
    (tmp / "notes").mkdir()
    _write(tmp / "notes", "readme.txt", "not a model")
    get_tokenizer(None, str(tmp / "notes"))


def yaml_type_error(tmp):
    recipe = _write(tmp, "fast.yaml", SFT_RECIPE.read_text() + "\nweight_decay: fast\n")
    parse_recipe(ScriptArguments, SFTConfig, ModelConfig, argv=[str(recipe)])


def cli_prefix(tmp):
    parse_recipe(ScriptArguments, SFTConfig, ModelConfig, argv=[str(SFT_RECIPE), "--learning_rat", "1e-5"])


def invalid_utf8_in_decontaminate(tmp):
    load_eval_texts(_write(tmp, "items.jsonl", b'{"question": "ok"}\n{"question": "caf\xe9"}\n'))


def curate_tasks_as_text(tmp):
    recipe = _write(tmp, "curate.yaml", f"input_dir: {tmp}\noutput_dir: {tmp / 'out'}\ntasks: two\n")
    parse_recipe(CurateConfig, argv=[str(recipe)])


def empty_pairs_in_a_trl_mixture(tmp):
    # A PTS run that found no pivot writes an empty pairs.jsonl; TRL's `datasets:` loader would raise StopIteration.
    from trl import DPOConfig

    from phi4_recipes.training import load_training_data

    pairs = _write(tmp, "pairs.jsonl", "")
    recipe = _write(tmp, "dpo.yaml", f"model_name_or_path: tiny\noutput_dir: {tmp / 'out'}\n"
                                     f"bf16: false\ndatasets:\n  - {{path: json, data_files: {pairs}}}\n")
    script_args, _, _ = parse_recipe(ScriptArguments, DPOConfig, ModelConfig, argv=[str(recipe)])
    load_training_data(script_args)


def missing_curate_input_dir(tmp):
    recipe = _write(tmp, "curate.yaml", f"input_dir: {tmp / 'crawl'}\noutput_dir: {tmp / 'out'}\n")
    parse_recipe(CurateConfig, argv=[str(recipe)])


def output_dir_is_a_file(tmp):
    taken = _write(tmp, "taken", "not a folder")
    parse_recipe(ScriptArguments, SFTConfig, ModelConfig, argv=[str(SFT_RECIPE), "--output_dir", str(taken)])


def output_dir_inside_a_file(tmp):
    from phi4_recipes.pts.options import PTSScriptArguments

    recipe = _write(tmp, "pts.yaml", (REPO / "recipes/tiny/pts.yaml").read_text().replace(
        "outputs/tiny/pts", str(tmp / "taken" / "pts")))
    _write(tmp, "taken", "not a folder")
    parse_recipe(PTSScriptArguments, argv=[str(recipe)])


def negative_learning_rate(tmp):
    recipe = _write(tmp, "minus.yaml", SFT_RECIPE.read_text().replace("learning_rate: 1.0e-3", "learning_rate: -1.0e-3"))
    parse_recipe(ScriptArguments, SFTConfig, ModelConfig, argv=[str(recipe)])


def nan_learning_rate(tmp):
    from trl import DPOConfig

    recipe = _write(tmp, "nan.yaml", f"model_name_or_path: tiny\noutput_dir: {tmp / 'out'}\nbf16: false\n"
                                   "learning_rate: .nan\n")
    parse_recipe(ScriptArguments, DPOConfig, ModelConfig, argv=[str(recipe)])


def infinite_learning_rate_on_the_command_line(tmp):
    parse_recipe(ScriptArguments, SFTConfig, ModelConfig, argv=[str(SFT_RECIPE), "--learning_rate", "inf"])


CASES = [
    (empty_jsonl, ValueError, r"empty\.jsonl: no rows"),
    (malformed_jsonl_line, ValueError, r"broken\.jsonl:2: not valid JSON"),
    (messages_as_a_string, ValueError, r"chat\.jsonl, row 0: 'messages' must be a non-empty list"),
    (message_without_content, ValueError, r"chat\.jsonl, row 1, message 0: expected \{role: str, content: str\}"),
    (folder_that_is_not_a_checkpoint, ValueError, r"notes is not a checkpoint folder: no tokenizer\.json"),
    (yaml_type_error, RecipeError, r"fast\.yaml: key 'weight_decay' expects float, got 'fast'"),
    (cli_prefix, RecipeError, r"unknown option '--learning_rat' \(did you mean 'learning_rate'\?\)"),
    (invalid_utf8_in_decontaminate, ValueError, r"items\.jsonl:2: not valid UTF-8"),
    (curate_tasks_as_text, RecipeError, r"curate\.yaml: key 'tasks' expects int, got 'two'"),
    (empty_pairs_in_a_trl_mixture, ValueError, r"pairs\.jsonl: no rows"),
    (missing_curate_input_dir, RecipeError, r"curate\.yaml: key 'input_dir': .*crawl does not exist"),
    (output_dir_is_a_file, RecipeError, r"sft\.yaml \(with command-line overrides\): key 'output_dir': \S+/taken is "
                                        r"a file, not a folder"),
    (negative_learning_rate, RecipeError, r"minus\.yaml: key 'learning_rate' must be a finite number >= 0, got -0\.001"),
    (nan_learning_rate, RecipeError, r"nan\.yaml: key 'learning_rate' must be a finite number >= 0, got nan"),
    (infinite_learning_rate_on_the_command_line, RecipeError,
     r"sft\.yaml \(with command-line overrides\): key 'learning_rate' must be a finite number >= 0, got inf"),
    (output_dir_inside_a_file, RecipeError, r"pts\.yaml: key 'output_dir': cannot create \S+/taken/pts: \S+/taken "
                                            r"is a file, not a folder"),
]


@pytest.mark.parametrize("trigger, error, message", CASES, ids=[case[0].__name__ for case in CASES])
def test_bad_input_error_names_file_key_or_row(trigger, error, message, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(error) as caught:
        trigger(tmp_path)
    assert re.search(message, str(caught.value)), str(caught.value)
