"""Liger kernels against the plain torch path, on a CUDA device (skipped where there is none)."""

import pytest
import torch

from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.model.modeling_phi4 import is_liger_available

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and is_liger_available()), reason="needs a CUDA device and liger-kernel"
)


def _pair():
    fields = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=1024, max_position_embeddings=256)
    torch.manual_seed(0)
    liger = Phi4ForCausalLM(Phi4Config.from_preset("tiny", use_liger=True, **fields)).cuda()
    plain = Phi4ForCausalLM(Phi4Config.from_preset("tiny", use_liger=False, **fields)).cuda()
    plain.load_state_dict(liger.state_dict())
    return liger, plain


def test_liger_forward_matches_plain_torch():
    liger, plain = _pair()
    ids = torch.randint(0, 1024, (2, 128), device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(liger.eval()(ids).logits, plain.eval()(ids).logits, atol=1e-4, rtol=1e-4)


def test_fused_loss_and_gradients_match_plain_torch():
    liger, plain = _pair()
    ids = torch.randint(0, 1024, (2, 128), device="cuda")
    labels = ids.clone()
    labels[:, :10] = -100
    out_liger = liger.train()(ids, labels=labels)
    out_plain = plain.train()(ids, labels=labels)
    assert out_liger.logits is None  # the fused kernel never builds the B x T x V logits
    torch.testing.assert_close(out_liger.loss, out_plain.loss, atol=1e-4, rtol=1e-4)
    out_liger.loss.backward()
    out_plain.loss.backward()
    for (name, a), (_, b) in zip(liger.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-3, rtol=1e-3, msg=name)
