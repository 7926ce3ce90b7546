"""The transformers backend on the project's tiny Phi-4 model: seeds, shared prefix, stopping, log-probs."""

import pytest
import torch

from phi4_recipes.generation import SamplingParams, build_generator, prompt_seed
from phi4_recipes.generation.transformers_backend import TransformersGenerator

pytest_plugins = ["generation_fixtures"]

QUESTIONS = ["What is 12 plus 30?", "The cat sat on", "def add(a, b):\n"]


def _ids(results):
    return [[c.token_ids for c in completions] for completions in results]


@pytest.fixture(scope="module")
def prompts(tiny_tokenizer):
    return [list(tiny_tokenizer.encode(q)) for q in QUESTIONS]


def test_same_seed_same_samples_other_seed_other_samples(tiny_generator, prompts):
    params = SamplingParams(n=3, max_new_tokens=12, seed=11)
    first = tiny_generator.generate(prompts, params)
    again = tiny_generator.generate(prompts, params)
    other = tiny_generator.generate(prompts, SamplingParams(n=3, max_new_tokens=12, seed=12))
    assert _ids(first) == _ids(again)
    assert _ids(first) != _ids(other)
    # The n samples of one prompt are different draws, not copies.
    assert len({tuple(c.token_ids) for c in first[0]}) == 3


def test_shared_prefix_gives_exactly_the_naive_samples(tiny_model, tiny_tokenizer, prompts):
    params = SamplingParams(n=4, max_new_tokens=10, seed=5, temperature=0.9, top_p=0.95)
    shared = TransformersGenerator(tiny_model, tiny_tokenizer, share_prefix=True).generate(prompts, params)
    naive = TransformersGenerator(tiny_model, tiny_tokenizer, share_prefix=False).generate(prompts, params)
    assert _ids(shared) == _ids(naive)
    for a, b in zip(sum(shared, []), sum(naive, [])):
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_shared_prefix_encodes_the_prompt_once(tiny_model, tiny_tokenizer, prompts):
    """Count tokens entering the embedding: one prompt copy plus one token per sample per step."""
    seen = []
    hook = tiny_model.get_input_embeddings().register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    try:
        n, steps, prompt = 8, 6, prompts[0] * 4
        params = SamplingParams(n=n, max_new_tokens=steps, seed=0, ignore_eos=True)
        TransformersGenerator(tiny_model, tiny_tokenizer).generate([prompt], params)
        assert seen[0] == (1, len(prompt))
        assert all(shape == (n, 1) for shape in seen[1:]) and len(seen) == steps
        seen.clear()
        TransformersGenerator(tiny_model, tiny_tokenizer, share_prefix=False).generate([prompt], params)
        assert seen[0] == (n, len(prompt))
    finally:
        hook.remove()


def test_a_prompt_samples_the_same_alone_in_a_batch_or_in_chunks(tiny_model, tiny_tokenizer, prompts):
    params = SamplingParams(n=2, max_new_tokens=8, seed=3)
    batched = TransformersGenerator(tiny_model, tiny_tokenizer).generate(prompts, params)
    chunked = TransformersGenerator(tiny_model, tiny_tokenizer, max_batch_rows=2).generate(prompts, params)
    assert _ids(chunked) == _ids(batched)
    # Prompt i of a batch uses prompt_seed(seed, i): alone, with that seed, it gives the same samples.
    for i, prompt in enumerate(prompts):
        alone = TransformersGenerator(tiny_model, tiny_tokenizer).generate(
            [prompt], SamplingParams(n=2, max_new_tokens=8, seed=prompt_seed(3, i))
        )
        assert _ids(alone) == _ids([batched[i]])


def test_stop_token_ends_only_its_own_row(tiny_generator, prompts):
    free = tiny_generator.generate(prompts, SamplingParams(n=2, max_new_tokens=12, seed=9, ignore_eos=True))
    stop_id = free[0][0].token_ids[3]
    # The streams are seeded, so the same run with a stop id is the free run cut at its first stop id.
    stopped = tiny_generator.generate(
        prompts, SamplingParams(n=2, max_new_tokens=12, seed=9, ignore_eos=True, stop_token_ids=(stop_id,))
    )
    for free_row, stopped_row in zip(sum(free, []), sum(stopped, [])):
        if stop_id in free_row.token_ids:
            cut = free_row.token_ids.index(stop_id) + 1
            assert stopped_row.token_ids == free_row.token_ids[:cut]
            assert stopped_row.finish_reason == "stop"
            assert stopped_row.logprobs == pytest.approx(free_row.logprobs[:cut], abs=1e-5)
        else:
            assert stopped_row.token_ids == free_row.token_ids
            assert stopped_row.finish_reason == "length" and len(stopped_row.token_ids) == 12
    assert stopped[0][0].token_ids[-1] == stop_id and len(stopped[0][0].token_ids) <= 4


def test_eos_from_generation_config_stops_unless_ignored(tiny_model, tiny_tokenizer, prompts):
    generator = TransformersGenerator(tiny_model, tiny_tokenizer)
    assert generator.eos_token_ids == [tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")]
    free = generator.generate(prompts, SamplingParams(n=4, max_new_tokens=16, seed=2, ignore_eos=True))
    sampled = [t for c in sum(free, []) for t in c.token_ids]
    # Make the model's own eos the most frequently sampled id, then check it ends rows.
    common = max(set(sampled), key=sampled.count)
    generator.eos_token_ids = [common]
    out = generator.generate(prompts, SamplingParams(n=4, max_new_tokens=16, seed=2))
    assert any(c.finish_reason == "stop" and c.token_ids[-1] == common for c in sum(out, []))
    assert all(common not in c.token_ids[:-1] for c in sum(out, []))


def test_logprobs_are_raw_model_logprobs(tiny_model, tiny_generator, prompts):
    params = SamplingParams(n=2, max_new_tokens=8, seed=4, temperature=0.5, top_p=0.8)
    [completions] = tiny_generator.generate([prompts[1]], params)
    for c in completions:
        full = torch.tensor([prompts[1] + c.token_ids])
        with torch.no_grad():
            logits = tiny_model(input_ids=full).logits[0, len(prompts[1]) - 1 : -1]
        expected = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(c.token_ids)[:, None]).squeeze(-1)
        assert c.logprobs == pytest.approx(expected.tolist(), abs=1e-4)
        assert tiny_generator.token_logprobs(prompts[1], c.token_ids) == pytest.approx(expected.tolist(), abs=1e-4)
    assert tiny_generator.token_logprobs(prompts[1], []) == []


def test_greedy_matches_transformers_generate(tiny_model, tiny_generator, prompts):
    [[ours]] = tiny_generator.generate([prompts[0]], SamplingParams(temperature=0.0, max_new_tokens=10,
                                                                     ignore_eos=True))
    reference = tiny_model.generate(
        torch.tensor([prompts[0]]), do_sample=False, max_new_tokens=10, min_new_tokens=10, eos_token_id=None,
        pad_token_id=0,
    )
    assert ours.token_ids == reference[0, len(prompts[0]) :].tolist()


def test_text_is_decoded_from_ids(tiny_generator, tiny_tokenizer, prompts):
    [completions] = tiny_generator.generate([prompts[2]], SamplingParams(n=2, max_new_tokens=8, seed=1))
    for c in completions:
        ids = c.token_ids[:-1] if c.finish_reason == "stop" else c.token_ids
        assert c.text == tiny_tokenizer.decode(ids, skip_special_tokens=False)
        assert len(c.logprobs) == len(c.token_ids)


def test_chat_applies_the_template_then_generates(tiny_generator, tiny_tokenizer):
    messages = [{"role": "user", "content": "What is 12 plus 30?"}]
    params = SamplingParams(n=2, max_new_tokens=6, seed=8)
    [via_chat] = tiny_generator.chat([messages], params)
    ids = tiny_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert tiny_tokenizer.decode(ids).endswith("<|im_start|>assistant<|im_sep|>")
    [via_ids] = tiny_generator.generate([ids], params)
    assert [c.token_ids for c in via_chat] == [c.token_ids for c in via_ids]


def test_loads_a_checkpoint_folder_by_path(tiny_checkpoint, tiny_generator, prompts):
    from_path = build_generator("transformers", str(tiny_checkpoint), dtype="float32")
    params = SamplingParams(n=2, max_new_tokens=6, seed=21)
    assert _ids(from_path.generate(prompts, params)) == _ids(tiny_generator.generate(prompts, params))
    assert from_path.tokenizer is not None and from_path.eos_token_ids == tiny_generator.eos_token_ids


def test_a_training_model_is_sampled_in_eval_mode_and_left_training(tiny_model, tiny_tokenizer, prompts):
    params = SamplingParams(n=2, max_new_tokens=5, seed=30)
    generator = TransformersGenerator(tiny_model, tiny_tokenizer)
    expected = generator.generate(prompts[:1], params)
    tiny_model.train()
    try:
        assert _ids(generator.generate(prompts[:1], params)) == _ids(expected)
        assert tiny_model.training
    finally:
        tiny_model.eval()


def test_empty_prompt_is_an_error(tiny_generator):
    with pytest.raises(ValueError, match="at least one token"):
        tiny_generator.generate([[]], SamplingParams())
