"""Liger's Triton kernels on the CPU through Triton's interpreter (TRITON_INTERPRET=1), against the plain torch
path (tests/test_model_cuda.py runs them compiled, on a GPU). Needs the `cpu-kernels` extra (liger-kernel and
triton); skipped without it.

liger-kernel 0.8.5's RMSNorm and SwiGLU kernels do not run in the interpreter: both call `.to` on a Python
float, which only a compiled kernel accepts. RoPE and the fused linear cross-entropy run, forward and backward."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from stage_runner import REPO, script_env

pytestmark = pytest.mark.skipif(
    not (importlib.util.find_spec("liger_kernel") and importlib.util.find_spec("triton")),
    reason="needs liger-kernel and triton (pip install -e '.[cpu-kernels]')")

INTERPRETER_GAP = "AttributeError(\"'float' object has no attribute 'to'\")"


@pytest.fixture(scope="module")
def kernels() -> dict[str, str]:
    env = script_env()
    env.update(TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "liger_interpret" / "check_kernels.py")], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("kernel", ["rope", "fused_linear_cross_entropy"])
def test_the_kernel_matches_the_torch_path_forward_and_backward(kernels, kernel):
    assert kernels[kernel] == "ok"


@pytest.mark.parametrize("kernel", ["rms_norm", "silu_mul"])
def test_the_kernels_the_interpreter_cannot_run_still_fail_the_same_way(kernels, kernel):
    """When a liger-kernel release fixes the scalar `.to`, this fails: move the kernel to the test above."""
    assert INTERPRETER_GAP in kernels[kernel]
