"""Run under TRITON_INTERPRET=1 by tests/test_liger_interpret.py: each Liger wrapper of phi4_recipes.model.liger
against the plain torch path of modeling_phi4, forward and backward, on CPU tensors. Prints one JSON object,
kernel -> "ok" or the error's first line."""

import json
import os
import sys

import torch

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"

from phi4_recipes.model import liger, modeling_phi4  # noqa: E402
from phi4_recipes.model.configuration_phi4 import Phi4Config  # noqa: E402


def close(a, b, atol=1e-5):
    torch.testing.assert_close(a, b, atol=atol, rtol=atol)


def grads(fn, *inputs):
    inputs = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*inputs)
    loss = sum((o.float() * torch.linspace(-1, 1, o.numel()).view_as(o)).sum() for o in
               (out if isinstance(out, tuple) else (out,)))
    loss.backward()
    return out, [x.grad for x in inputs]


def rms_norm():
    x, w = torch.randn(2, 8, 64), torch.randn(64)
    norm = modeling_phi4.Phi4RMSNorm(64, 1e-5, use_liger=False)
    out, g = grads(lambda x, w: liger.rms_norm(x, w, 1e-5), x, w)
    norm.weight.data.copy_(w)
    close(out, norm(x))


def rope():
    config = Phi4Config.from_preset("tiny", hidden_size=64, num_attention_heads=4, num_key_value_heads=2)
    q, k = torch.randn(2, 4, 8, 16), torch.randn(2, 2, 8, 16)
    cos, sin = modeling_phi4.Phi4RotaryEmbedding(config)(q, torch.arange(8)[None].expand(2, 8))
    out, g = grads(lambda q, k: liger.rotary_pos_emb(q, k, cos, sin), q, k)
    ref, g_ref = grads(lambda q, k: modeling_phi4.apply_rotary_pos_emb(q, k, cos, sin, False), q, k)
    for a, b in zip([*out, *g], [*ref, *g_ref]):
        close(a, b)


def silu_mul():
    gate, up = torch.randn(2, 8, 64), torch.randn(2, 8, 64)
    out, g = grads(liger.silu_mul, gate, up)
    ref, g_ref = grads(lambda gate, up: up * torch.nn.functional.silu(gate), gate, up)
    for a, b in zip([out, *g], [ref, *g_ref]):
        close(a, b)


def fused_linear_cross_entropy():
    torch.manual_seed(0)
    hidden, weight = torch.randn(2, 12, 32), torch.randn(96, 32) * 0.1
    labels = torch.randint(0, 96, (2, 12))
    labels[:, :3] = -100
    out, g = grads(lambda h, w: liger.fused_linear_cross_entropy(h, w, labels, 32), hidden, weight)

    def plain(h, w):
        logits = (h @ w.T)[:, :-1].reshape(-1, 96)
        return torch.nn.functional.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=-100)

    ref, g_ref = grads(plain, hidden, weight)
    for a, b in zip([out, *g], [ref, *g_ref]):
        close(a, b, atol=1e-4)


results = {}
for check in (rms_norm, rope, silu_mul, fused_linear_cross_entropy):
    torch.manual_seed(0)
    try:
        check()
        results[check.__name__] = "ok"
    except Exception as err:  # noqa: BLE001 - the report names each kernel's failure
        results[check.__name__] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
json.dump(results, sys.stdout)
