"""Make a checkpoint folder saved by another tool (`trl sft`, `trl dpo`, a plain Trainer) portable, as our
own stages leave theirs.

    python -m phi4_recipes.portable outputs/trl_sft [more folders ...]

What transformers 5 and TRL write opens in transformers 5 only: `tokenizer_config.json` names
`TokenizersBackend` (no 4.x release knows it), `config.json` keeps the RoPE base only inside
`rope_parameters` (4.x and the vLLM releases pinned to it fall back to 10,000), and a recipe's training
template keeps its `{% generation %}` tags, on which jinja2, minijinja (TGI) and llama.cpp fail. This rewrites
those three files in place with the code our own save uses (training.finish): the Phi-3 config keys of
Phi4Config, make_tokenizer_config_portable, and the plain template. Weights are not touched. Running it twice
changes nothing the second time.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from phi4_recipes.model import Phi4Config
from phi4_recipes.model_loading import PHI_MODEL_TYPES
from phi4_recipes.tokenizer import (
    load_chat_template,
    load_training_chat_template,
    make_tokenizer_config_portable,
)

TEMPLATE_FILE = "chat_template.jinja"
# `{% generation %}` / `{%- endgeneration -%}`: transformers' assistant-mask markers, unknown to other engines.
GENERATION_TAG = re.compile(r"{%-?\s*(?:end)?generation\s*-?%}")


def plain_template(template: str) -> str:
    """The template an engine other than transformers can render: our training template becomes the shipped
    one (byte for byte); any other loses only its generation markers, which render nothing in transformers."""
    if template == load_training_chat_template():
        return load_chat_template()
    return GENERATION_TAG.sub("", template)


def _portable_config(folder: Path) -> None:
    path = folder / "config.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("model_type") in PHI_MODEL_TYPES:
        # Phi4Config serialises as microsoft/phi-4's config.json does (Phi-3 architecture, top-level rope_theta,
        # rope_scaling and sliding_window), whoever wrote the folder.
        Phi4Config.from_pretrained(folder).save_pretrained(folder)
        return
    rope = raw.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope and raw.get("rope_theta") is None:
        raw["rope_theta"] = rope["rope_theta"]
        path.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _portable_templates(folder: Path) -> None:
    template_file = folder / TEMPLATE_FILE
    if template_file.is_file():
        template_file.write_text(plain_template(template_file.read_text(encoding="utf-8")), encoding="utf-8")
    tokenizer_config = folder / "tokenizer_config.json"
    config = json.loads(tokenizer_config.read_text(encoding="utf-8"))
    if isinstance(config.get("chat_template"), str):
        config["chat_template"] = plain_template(config["chat_template"])
        tokenizer_config.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                    encoding="utf-8")


def make_checkpoint_portable(folder: str | Path) -> None:
    """Rewrite `config.json`, `chat_template.jinja` and `tokenizer_config.json` of a saved checkpoint in place."""
    folder = Path(folder)
    missing = [name for name in ("config.json", "tokenizer_config.json") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not a saved checkpoint folder (no {', '.join(missing)})")
    _portable_config(folder)
    _portable_templates(folder)
    make_tokenizer_config_portable(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m phi4_recipes.portable", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="checkpoint folders (config.json, tokenizer_config.json, weights)")
    for folder in parser.parse_args(argv).folders:
        try:
            make_checkpoint_portable(folder)
        except FileNotFoundError as err:
            raise SystemExit(str(err)) from err
        print(f"{folder}: portable (PreTrainedTokenizerFast, top-level rope_theta, plain chat template)")


if __name__ == "__main__":
    main()
