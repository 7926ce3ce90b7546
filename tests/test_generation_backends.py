"""Backend selection, the vLLM parameter mapping (no GPU here), and the PTS sampler adapter."""

import importlib.util

import pytest

from phi4_recipes.generation import BACKENDS, PTSSampler, SamplingParams, build_generator
from phi4_recipes.generation.transformers_backend import TransformersGenerator
from phi4_recipes.generation.vllm_backend import vllm_engine_kwargs, vllm_sampling_kwargs
from phi4_recipes.pts import Sampler, token_logprobs_of

pytest_plugins = ["generation_fixtures"]


def test_factory_builds_by_recipe_key(tiny_model, tiny_tokenizer):
    assert BACKENDS == ("transformers", "vllm", "openai")
    assert isinstance(build_generator("transformers", tiny_model, tiny_tokenizer), TransformersGenerator)
    with pytest.raises(ValueError, match="unknown generation backend 'vlm'.*transformers"):
        build_generator("vlm", "some/model")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_the_extra_says_what_to_install():
    with pytest.raises(ImportError, match=r"pip install 'phi4-recipes\[vllm\]'"):
        build_generator("vllm", "checkpoints/sft", tensor_parallel_size=2)


def test_vllm_engine_kwargs_from_recipe_keys():
    kwargs = vllm_engine_kwargs("ckpt/sft", tensor_parallel_size=4, seed=3, max_model_len=16384,
                                gpu_memory_utilization=0.8, enforce_eager=True)
    assert kwargs == {
        "model": "ckpt/sft", "tokenizer": "ckpt/sft", "tensor_parallel_size": 4, "enable_prefix_caching": True,
        "seed": 3, "dtype": "auto", "gpu_memory_utilization": 0.8, "logprobs_mode": "raw_logprobs",
        "max_model_len": 16384, "enforce_eager": True,
    }
    assert vllm_engine_kwargs("m", tokenizer_path="tok")["tokenizer"] == "tok"


def test_vllm_sampling_kwargs_mirror_sampling_params():
    params = SamplingParams(n=8, temperature=0.7, top_p=0.95, max_new_tokens=64, stop_token_ids=[5, 7],
                            seed=1, ignore_eos=True)
    assert vllm_sampling_kwargs(params, seed=99) == {
        "n": 8, "temperature": 0.7, "top_p": 0.95, "max_tokens": 64, "stop_token_ids": [5, 7],
        "ignore_eos": True, "seed": 99, "logprobs": 0, "skip_special_tokens": False,
    }


def test_pts_sampler_returns_continuation_ids_of_query_plus_prefix(tiny_generator, tiny_tokenizer):
    query, prefix = list(tiny_tokenizer.encode("What is 12 plus 30?")), list(tiny_tokenizer.encode(" The"))
    params = SamplingParams(max_new_tokens=7, temperature=1.0)
    sampler = PTSSampler(tiny_generator, params)
    assert isinstance(sampler, Sampler) and token_logprobs_of(sampler) is not None
    samples = sampler.sample(query, prefix, n=5, seed=17)
    [expected] = tiny_generator.generate([query + prefix], SamplingParams(n=5, max_new_tokens=7, seed=17))
    assert samples == [c.token_ids for c in expected]
    assert samples == sampler.sample(query, prefix, n=5, seed=17)
    assert samples != sampler.sample(query, prefix, n=5, seed=18)
    assert all(1 <= len(s) <= 7 for s in samples)
    response = prefix + samples[0]
    assert sampler.token_logprobs(query, response) == pytest.approx(
        tiny_generator.token_logprobs(query, response), abs=1e-6
    )
    assert len(sampler.token_logprobs(query, response)) == len(response)
