"""Answer a question with a checkpoint and its chat template (greedy, stops at <|im_end|>).

    python -m phi4_recipes.chat outputs/tiny/sft "Ava has 3 apples and gets 4 more. How many apples does Ava have now?"
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def answer(model, tokenizer, question: str, *, system: str | None = None, max_new_tokens: int = 128) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="checkpoint folder or Hub id")
    parser.add_argument("question")
    parser.add_argument("--system", default=None)
    parser.add_argument("--max_new_tokens", type=int, default=128)
    args = parser.parse_args(argv)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    print(answer(model, tokenizer, args.question, system=args.system, max_new_tokens=args.max_new_tokens))


if __name__ == "__main__":
    main()
