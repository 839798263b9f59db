# UnionPose: `make demo` runs the main job, `make test` runs the tests. Both set everything up first.
# torch is installed first, pinned (a plain `torch` would pull a multi-GB CUDA build); override with TORCH_SPEC,
# e.g. `make test TORCH_SPEC="torch==2.13.0+cu128 --index-url ..."` on a GPU machine. Then the package with its
# `train`, `serve` and `mpii` extras (the base install is the torch-free runtime; training, export, `unionpose
# serve` and the tests need them; `mpii` is SciPy, for MPII's official .mat evaluation files).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.unionpose-installed
DEMO_OUT ?= runs/demo

.PHONY: setup browser test test-fast demo clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[train,serve,mpii,dev]"
	touch $(STAMP)

setup: $(STAMP)

# The browser test of `unionpose serve` drives Debian's Chromium; install it where apt-get runs as root. Elsewhere, or
# when the install fails, the test skips and says why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
			>/dev/null) || echo "could not install chromium: the browser test will skip"; \
	else echo "no chromium, and no apt-get as root to install it: the browser test will skip"; fi

# The core suite runs in $(VENV) (numpy 2, no MediaPipe), then the expert suite in its own environment.
test: setup browser
	$(BIN)/python -m pytest -q --ignore=tests/experts
	$(MAKE) test-experts

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# MediaPipe 0.10.21 (the part experts) forces numpy<2 and protobuf<5: it gets its own environment.
EXPERTS_VENV ?= .venv-experts
EXPERTS_BIN := $(EXPERTS_VENV)/bin
EXPERTS_STAMP := $(EXPERTS_VENV)/.unionpose-installed

.PHONY: setup-experts test-experts

$(EXPERTS_STAMP): pyproject.toml Makefile
	test -x $(EXPERTS_BIN)/python || $(PYTHON) -m venv $(EXPERTS_VENV)
	$(EXPERTS_BIN)/python -m pip install -q --upgrade pip
	$(EXPERTS_BIN)/python -m pip install -q $(TORCH_SPEC)
	$(EXPERTS_BIN)/python -m pip install -q -e ".[train,experts,dev]"
	$(EXPERTS_BIN)/python -c "import sys, numpy, mediapipe; \
		sys.exit(f'{sys.prefix}: numpy {numpy.__version__}, but MediaPipe needs numpy<2' \
		if int(numpy.__version__.split('.')[0]) >= 2 else 0)"
	touch $(EXPERTS_STAMP)

setup-experts: $(EXPERTS_STAMP)

test-experts: setup-experts
	$(EXPERTS_BIN)/python -m pytest -q -m experts tests/experts

# The paper's experiment in miniature (about 15 minutes on 2 CPU cores; DEMO_ARGS=--quick for a 2-minute run).
demo: setup
	$(BIN)/unionpose demo --out $(DEMO_OUT) $(DEMO_ARGS)

clean:
	rm -rf $(VENV) $(EXPERTS_VENV) runs .pytest_cache
