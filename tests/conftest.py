"""Shared test set-up: offline, deterministic, CPU only."""

import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("WANDB_DISABLED", "true")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


# Tests that run model-written code need the namespace sandbox. Off CI they skip where the kernel
# refuses namespaces; under CI (CI=true) they fail instead, so a broken sandbox cannot pass silently.
def pytest_configure(config):
    config.addinivalue_line("markers", "sandbox: needs the code sandbox (fails instead of skipping under CI=true)")


def pytest_runtest_setup(item):
    if item.get_closest_marker("sandbox") is None:
        return
    from phi4_recipes.verify.sandbox import SandboxUnavailableError, check_isolation

    try:
        check_isolation()
    except SandboxUnavailableError as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and the code sandbox is unavailable: {error}", pytrace=False)
        pytest.skip(f"the code sandbox is unavailable here: {error}")
