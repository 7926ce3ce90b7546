"""Shared fixtures for tests/test_generation_*.py: the project's tiny model and tokenizer, and a local server.

pytest only auto-loads conftest.py (owned by the lead), so test modules load this file with
`pytest_plugins = ["generation_fixtures"]`.
"""

from __future__ import annotations

import pytest
import torch

from openai_server import OpenAICompatibleServer
from phi4_recipes.generation.transformers_backend import TransformersGenerator
from phi4_recipes.model import Phi4Config, Phi4ForCausalLM
from phi4_recipes.tokenizer import train_tiny_tokenizer

CORPUS = [
    "The cat sat on the mat and looked at the moon.",
    "What is 12 plus 30? The answer is 42.",
    "def add(a, b):\n    return a + b\n",
    "Pivotal tokens change the chance that an answer is right.",
    "Hello! How are you today? I am fine, thank you.",
] * 4

SERVER_API_KEY = "sk-test-0123456789-never-print-me"


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return train_tiny_tokenizer(CORPUS, vocab_size=400)


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    # The tiny preset, narrower and shallower so the suite stays fast on 2 shared cores; vocabulary sized
    # to the tokenizer so every sampled id decodes.
    torch.manual_seed(0)
    config = Phi4Config.from_preset("tiny", vocab_size=len(tiny_tokenizer), hidden_size=128,
                                    intermediate_size=256, num_hidden_layers=2)
    return Phi4ForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_model, tiny_tokenizer, tmp_path_factory):
    """A local checkpoint folder (model + tokenizer), as a training stage would write it."""
    path = tmp_path_factory.mktemp("tiny_checkpoint")
    tiny_model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def lora_adapter(tiny_checkpoint, tmp_path):
    """(folder, peft model): a LoRA adapter on every linear layer of `tiny_checkpoint`, saved as run_dpo.py saves
    one (peft's files and the tokenizer). Its B matrices are nonzero: peft starts them at zero, which would merge
    to the base itself."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_checkpoint),
                                LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    folder = tmp_path / "dpo_pts_adapter"
    peft_model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_checkpoint).save_pretrained(folder)
    return folder, peft_model.eval()


@pytest.fixture(scope="session")
def tiny_generator(tiny_model, tiny_tokenizer):
    return TransformersGenerator(tiny_model, tiny_tokenizer)


@pytest.fixture(scope="module")
def local_server(tiny_generator):
    """The package's OpenAI-compatible server on 127.0.0.1 (free port), requiring SERVER_API_KEY."""
    with OpenAICompatibleServer(tiny_generator, model_name="tiny", api_key=SERVER_API_KEY) as server:
        yield server


@pytest.fixture
def server(local_server):
    """`local_server` with no planned faults and fresh counters."""
    local_server.faults.clear()
    yield local_server
    local_server.faults.clear()

