# One entry point for set-up, tests and the tiny end-to-end pipeline.
PYTHON ?= python
PIP ?= $(PYTHON) -m pip
EXTRAS ?= dev,data
OUT ?= outputs/tiny
export PYTHONHASHSEED := 0
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: install test test-fast lint tiny clean

# Reinstall only when the package metadata changes. Without CUDA the CPU wheel of torch goes in first,
# so that no dependency pulls the multi-GB CUDA build.
.installed: setup.cfg pyproject.toml
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(PIP) install -e ".[$(EXTRAS),gpu]"; \
	else \
		$(PIP) install "torch==2.13.0" && $(PIP) install -e ".[$(EXTRAS)]" "torch==2.13.0"; \
	fi
	@touch $@

install: .installed

test: .installed
	$(PYTHON) -m pytest -q tests

test-fast: .installed
	$(PYTHON) -m pytest -q -m "not slow" tests

lint: .installed
	$(PYTHON) -m ruff check src tests bench eval

tiny: .installed
	bash scripts/tiny_pipeline.sh $(OUT)

clean:
	rm -rf $(OUT) .installed
