"""One sampling interface for PTS, judge-guided DPO, synthetic data and evaluation.

    gen = build_generator("transformers", "checkpoints/sft")          # or "vllm", "openai"
    [[completion]] = gen.generate([prompt_ids], SamplingParams(max_new_tokens=64, seed=1))
    completion.token_ids, completion.text, completion.logprobs, completion.finish_reason
"""

from .base import Generator
from .factory import BACKENDS, build_generator
from .http_retry import RequestFailed, RetryPolicy
from .pts_sampler import PTSSampler
from .types import Completion, SamplingParams, prompt_seed

__all__ = [
    "BACKENDS",
    "Completion",
    "Generator",
    "PTSSampler",
    "RequestFailed",
    "RetryPolicy",
    "SamplingParams",
    "build_generator",
    "prompt_seed",
]
