"""Pick a backend by its recipe key."""

from __future__ import annotations

from .base import Generator

BACKENDS = ("transformers", "vllm", "openai")


def build_generator(backend: str, model, tokenizer=None, **kwargs) -> Generator:
    """Build the generator a recipe names.

    Args:
        backend: "transformers" (default, CPU or GPU), "vllm" (extra `vllm`, GPU) or "openai" (HTTP).
        model: nn.Module or checkpoint path for transformers; checkpoint path for vllm; the server's
            model id for openai.
        tokenizer: tokenizer object (optional; transformers loads one from a path).
        kwargs: backend options, e.g. max_batch_rows (transformers), tensor_parallel_size (vllm),
            base_url / api_key_env / max_concurrency (openai).
    """
    if backend == "transformers":
        from .transformers_backend import TransformersGenerator

        return TransformersGenerator(model, tokenizer, **kwargs)
    if backend == "vllm":
        from .vllm_backend import VLLMGenerator

        return VLLMGenerator(model, tokenizer, **kwargs)
    if backend == "openai":
        from .openai_backend import OpenAIGenerator

        return OpenAIGenerator(model, tokenizer, **kwargs)
    raise ValueError(f"unknown generation backend {backend!r}; expected one of {BACKENDS}")
