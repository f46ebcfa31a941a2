# Every target installs what it needs; `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS_VENV := .tools
DEMO_DIR ?= demo-output

.PHONY: setup setup-node setup-tools test test-fast lint demo bench clean

setup: $(STAMP) node_modules/.installed src/spaceport/viewer/static/playcanvas.min.mjs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch 2.13.0 first: the CPU wheel; asking for torch through a range could pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[stages,cloud,dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup-node: node_modules/.installed

# The viewer ships the pinned engine inside the package: the page works offline, without a CDN.
src/spaceport/viewer/static/playcanvas.min.mjs: node_modules/.installed
	mkdir -p $(@D)
	cp node_modules/playcanvas/build/playcanvas.min.mjs $@

test: setup
	$(BIN)/pytest -q

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check src tests benchmarks functions
	$(BIN)/ruff format --check src tests benchmarks functions

demo: setup
	$(BIN)/spaceport sample-scene $(DEMO_DIR)/sample-photos
	$(BIN)/spaceport run $(DEMO_DIR)/sample-photos --out $(DEMO_DIR)/run --preset default
	@echo "Open the viewer: $(BIN)/spaceport view $(DEMO_DIR)/run"

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) node_modules $(TOOLS_VENV) $(DEMO_DIR) .pytest_cache
