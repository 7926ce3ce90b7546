"""Merge a LoRA adapter into its base model and save the result as a plain checkpoint, as our own stages save.

    python -m phi4_recipes.merge_adapter outputs/tiny/dpo_pts_adapter --output_dir outputs/tiny/dpo_pts

A LoRA run (`use_peft: true`, ours or `trl dpo`'s) saves only the adapter. The stages after it (evaluation,
judge-guided pairs, the next DPO round), vLLM and a plain `AutoModelForCausalLM.from_pretrained` want whole
weights, so the pipeline merges the adapter with peft's `merge_and_unload` into a new folder: weights, the
adapter's tokenizer, the generation settings our stages write, the portable config and template
(phi4_recipes.portable), and the adapter's manifest (its training log, pairs and lineage, so the leaderboard
can say how the round trained) with the merge recorded, and a model card. The adapter folder is not touched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from phi4_recipes.hub import write_model_card
from phi4_recipes.manifest import read_manifest
from phi4_recipes.model_loading import configure_generation
from phi4_recipes.portable import make_checkpoint_portable

ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(adapter: Path) -> str:
    """The base the adapter was trained on, as its adapter_config.json names it."""
    config_path = adapter / ADAPTER_CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"{adapter}: not a LoRA adapter folder (no {ADAPTER_CONFIG})")
    base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{config_path}: no base_model_name_or_path, so there is nothing to merge into")
    return base


def merge_adapter(adapter: str | Path, output_dir: str | Path) -> Path:
    """Write `adapter` merged into its base to `output_dir`; returns the output folder."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    adapter, output = Path(adapter), Path(output_dir)
    if output.resolve() == adapter.resolve():
        raise ValueError(f"{adapter}: the merged model needs its own folder (the adapter is kept as it is)")
    base = adapter_base(adapter)
    model = AutoPeftModelForCausalLM.from_pretrained(adapter, dtype="auto").merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    configure_generation(model, tokenizer)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    make_checkpoint_portable(output)
    manifest = read_manifest(adapter)
    if manifest is not None:  # our own stage's adapter: carry its record over, saying what was merged
        manifest["merged_adapter"] = {"adapter": str(adapter.resolve()), "base_model_name_or_path": base}
        (output / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        write_model_card(output, manifest, base_model=base, hub_model_id=None)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m phi4_recipes.merge_adapter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapter", help="a LoRA adapter folder (adapter_config.json naming its base)")
    parser.add_argument("--output_dir", required=True, help="where the merged checkpoint is written")
    args = parser.parse_args(argv)
    try:
        output = merge_adapter(args.adapter, args.output_dir)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err)) from err
    print(f"{args.adapter} merged into its base: {output}")


if __name__ == "__main__":
    main()
