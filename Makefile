# `make demo` and `make test` set everything up on a fresh machine.
#
# The virtual environment is created on first use.  torch is installed before
# the project, pinned to the release this project is tested with; on a
# machine with a GPU, PyPI's build of that release is the CUDA one, and a
# torch you installed into .venv yourself is kept (override with
# `make TORCH_SPEC='torch==X.Y' ...`).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench clean

demo: $(STAMP)
	$(PY) examples/textbook_cases.py
	$(PY) -m divergences.probes --out runs/probes
	rm -rf runs/demo
	$(PY) examples/demo_gan_vs_wgan.py --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
