"""The steps of bench/gpu_suite.sh that are Python, and its one table.

    python bench/gpu_suite.py init-tiny OUT/sft/init            # the tiny preset + tiny tokenizer, as a stage saves it
    python bench/gpu_suite.py check-sft OUT/sft --json OUT/sft.json    # each SFT checkpoint loads; diff vs plain
    python bench/gpu_suite.py vllm16k OUT/vllm16k --json OUT/vllm16k.json
    python bench/gpu_suite.py recipe SRC.yaml DST.yaml --set backend=vllm --set 'backend_kwargs={}'
    python bench/gpu_suite.py report OUT --append bench/RESULTS.md     # prints the table, appends it

`recipe` writes a copy of a recipe with some keys replaced (values read as YAML): the recipe parser takes a
mapping such as backend_kwargs only from a recipe file, not from the command line.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

# The CPU run the suite's PTS section repeats on vLLM: bench/RESULTS.md, issue 15, "Run 2, after the fix"
# (bash bench/pts_smollm2_cpu.sh on 2 idle cores, transformers backend, the same 12 `groups` questions).
CPU_PTS = {"rollouts": 2431, "seconds": 26 * 60 + 46, "pivots": 4, "p_query_histogram": [4, 5, 3, 0, 0, 0, 0, 0, 0, 0]}
PROMPT_TOKENS_16K = 16_000


def init_tiny(out: Path) -> None:
    import torch

    from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
    from phi4_recipes.model_loading import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    Phi4ForCausalLM(Phi4Config.from_preset("tiny", vocab_size=len(tokenizer))).save_pretrained(out)
    tokenizer.save_pretrained(out)


def check_sft(folder: Path) -> dict:
    """Each run's checkpoint through plain AutoModelForCausalLM, its logged losses, and its largest weight
    difference from the plain run (bf16 rounds every update: expect ~1e-2)."""
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(folder / "plain").state_dict()
    runs = {}
    for name in ("plain", "fsdp", "zero3"):
        manifest_path = folder / name / "manifest.json"
        if not manifest_path.is_file():
            runs[name] = {"loads": False, "error": f"no checkpoint in {folder / name}"}
            continue
        manifest = json.loads(manifest_path.read_text())
        weights = AutoModelForCausalLM.from_pretrained(folder / name).state_dict()
        diff = max((weights[k].float() - plain[k].float()).abs().max().item() for k in plain)
        runs[name] = {"loads": True, "distributed_type": manifest.get("distributed_type"),
                      "fsdp_units": manifest.get("fsdp_units"),
                      "losses": [round(e["loss"], 4) for e in manifest.get("log_history", []) if "loss" in e],
                      "max_abs_weight_diff_vs_plain": diff}
    return runs


def vllm16k(out: Path) -> dict:
    """A checkpoint of the phi4-14b-16k shape (2 of 40 layers, random weights, no tokenizer: token ids in and
    out) loaded in vLLM at max_model_len 16,384; greedy tokens after a 16,000-token prompt against transformers."""
    import torch
    from vllm import LLM, SamplingParams, TokensPrompt

    from phi4_recipes.model import Phi4Config, Phi4ForCausalLM

    torch.manual_seed(0)
    config = Phi4Config.from_preset("phi4-14b-16k", num_hidden_layers=2)
    with torch.device("cuda"):
        model = Phi4ForCausalLM(config).to(torch.bfloat16).eval()
    model.save_pretrained(out)
    prompt = torch.randint(1000, 100_000, (PROMPT_TOKENS_16K,), generator=torch.Generator().manual_seed(0)).tolist()
    with torch.no_grad():
        hf = model.generate(torch.tensor([prompt], device="cuda"), max_new_tokens=16, do_sample=False,
                            min_new_tokens=16)[0, len(prompt):].tolist()
    del model
    torch.cuda.empty_cache()
    started = time.perf_counter()
    llm = LLM(model=str(out), skip_tokenizer_init=True, max_model_len=16_384, gpu_memory_utilization=0.5,
              dtype="bfloat16", seed=0)
    load_seconds = time.perf_counter() - started
    result = llm.generate(TokensPrompt(prompt_token_ids=prompt),
                          SamplingParams(max_tokens=16, min_tokens=16, temperature=0.0, detokenize=False))
    got = list(result[0].outputs[0].token_ids)
    agree = next((i for i, (a, b) in enumerate(zip(got, hf)) if a != b), len(got))
    return {"max_position_embeddings": config.max_position_embeddings, "rope_theta": config.rope_theta,
            "prompt_tokens": len(prompt), "generated": len(got), "load_seconds": round(load_seconds, 1),
            "greedy_prefix_equal_to_transformers": agree}


def derive_recipe(source: Path, target: Path, settings: list[str]) -> None:
    import yaml

    recipe = yaml.safe_load(source.read_text())
    for setting in settings:
        key, _, value = setting.partition("=")
        if key not in recipe:
            raise SystemExit(f"{source} has no key {key!r}")
        recipe[key] = yaml.safe_load(value)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"# {source} with {', '.join(settings)} (bench/gpu_suite.py recipe)\n" + yaml.safe_dump(recipe))


def read_status(out: Path) -> dict[str, tuple[int, int]]:
    path = out / "status.tsv"
    rows = [line.split("\t") for line in path.read_text().splitlines()] if path.is_file() else []
    return {name: (int(status), int(seconds)) for name, status, seconds in rows}


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def table(out: Path) -> str:
    """One Markdown table: a row per step that ran, what it measured, exit status and seconds."""
    status = read_status(out)
    results: dict[str, str] = {}
    for name in ("liger", "liger_flash"):
        liger = read_json(out / f"{name}.json")
        if liger:
            results[name] = (f"{liger['preset']}, {liger['tokens']} tokens, {liger['dtype']}, "
                             f"{liger['attn_implementation']}, liger_active={liger['liger_active']}: Phi3 "
                             f"{liger['stock_tokens_per_s']:,.0f} tok/s {liger['stock_peak_mb']:,.0f} MB; Phi4+Liger "
                             f"{liger['ours_tokens_per_s']:,.0f} tok/s {liger['ours_peak_mb']:,.0f} MB")
    sft = read_json(out / "sft.json") or {}
    for name, run in sft.items():
        results[f"sft_{name}"] = (f"loads={run['loads']} {run.get('distributed_type')} units={run.get('fsdp_units')} "
                                  f"losses={run.get('losses')} diff_vs_plain={run.get('max_abs_weight_diff_vs_plain', 0):.1e}"
                                  if run["loads"] else run["error"])
    long = read_json(out / "vllm16k.json")
    if long:
        results["vllm16k"] = (f"max_model_len {long['max_position_embeddings']}, prompt {long['prompt_tokens']}, "
                              f"{long['generated']} greedy tokens, first {long['greedy_prefix_equal_to_transformers']} "
                              f"equal to transformers, engine start {long['load_seconds']} s")
    pts = read_json(out / "pts" / "manifest.json")
    if pts:
        summary = pts["extra"]["summary"]
        cpu_rate = CPU_PTS["rollouts"] / CPU_PTS["seconds"]
        rate = summary["rollouts"] / max(summary["seconds"], 1e-9)
        results["pts"] = (f"vLLM: {summary['rollouts']} rollouts in {summary['seconds']} s ({rate:.1f}/s), "
                          f"histogram {summary.get('p_query_histogram')}, {summary.get('pivots')} pivots; CPU: "
                          f"{CPU_PTS['rollouts']} in {CPU_PTS['seconds']} s ({cpu_rate:.1f}/s), histogram "
                          f"{CPU_PTS['p_query_histogram']}, {CPU_PTS['pivots']} pivots; {rate / cpu_rate:.0f}x")
    lines = ["| step | exit | seconds | result |", "|---|---:|---:|---|"]
    for name, (code, seconds) in status.items():
        if name == "report":
            continue
        result = results.get(name, f"see {out / (name + '.log')}" if code else "")
        lines.append(f"| {name} | {code} | {seconds} | {result} |")
    return "\n".join(lines)


def report(out: Path, append: Path | None) -> str:
    device = (out / "device.txt").read_text().strip() if (out / "device.txt").is_file() else "unknown device"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = f"\n## GPU suite (bash bench/gpu_suite.sh), {device}, {stamp}\n\n{table(out)}\n"
    (out / "table.md").write_text(text)
    if append is not None:
        with open(append, "a", encoding="utf-8") as handle:
            handle.write(text)
    print(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    steps.add_parser("init-tiny").add_argument("out", type=Path)
    for name in ("check-sft", "vllm16k"):
        step = steps.add_parser(name)
        step.add_argument("folder", type=Path)
        step.add_argument("--json", type=Path, required=True)
    step = steps.add_parser("recipe")
    step.add_argument("source", type=Path)
    step.add_argument("target", type=Path)
    step.add_argument("--set", action="append", default=[], metavar="KEY=YAML", help="replace a key's value")
    step = steps.add_parser("report")
    step.add_argument("out", type=Path)
    step.add_argument("--append", type=Path, help="also append the table to this Markdown file")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.step == "init-tiny":
        init_tiny(args.out)
    elif args.step == "recipe":
        derive_recipe(args.source, args.target, args.set)
    elif args.step == "report":
        report(args.out, args.append)
    else:
        result = check_sft(args.folder) if args.step == "check-sft" else vllm16k(args.folder)
        args.json.write_text(json.dumps(result, indent=1))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
