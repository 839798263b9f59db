# UnionPose: `make demo` runs the main job, `make test` runs the tests. Both set everything up first.
# torch is installed first, pinned (a plain `torch` would pull a multi-GB CUDA build); override with TORCH_SPEC,
# e.g. `make test TORCH_SPEC="torch==2.13.0+cu128 --index-url ..."` on a GPU machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.unionpose-installed
DEMO_OUT ?= runs/demo

.PHONY: setup test test-fast demo clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

demo: setup
	$(BIN)/unionpose skeleton union coco17 mpii16 --name coco_mpii21 --out $(DEMO_OUT)/coco_mpii21.yaml --draw $(DEMO_OUT)/coco_mpii21.png

clean:
	rm -rf $(VENV) runs .pytest_cache
