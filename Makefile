# Every target installs what it needs; `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS_VENV := .tools
DEMO_DIR ?= demo-output

.PHONY: setup setup-node setup-tools test test-fast lint lint-cloud demo bench clean

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

test: setup setup-tools
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

# Template, state machine and security linters in their own virtualenvs (aws-sam-cli pins boto3; checkov
# pins versions that conflict with aws-sam-cli, so it gets .tools/checkov, linked into .tools/bin).
TOOLS_STAMP := $(TOOLS_VENV)/.installed
$(TOOLS_STAMP): tools-requirements.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/pip install --quiet -r tools-requirements.txt
	$(PYTHON) -m venv $(TOOLS_VENV)/checkov
	$(TOOLS_VENV)/checkov/bin/pip install --quiet $$(sed -n 's/^# checkov-venv: //p' tools-requirements.txt)
	ln -sf ../checkov/bin/checkov $(TOOLS_VENV)/bin/checkov
	touch $@

setup-tools: $(TOOLS_STAMP)

lint-cloud: setup-tools
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam validate --lint
	$(TOOLS_VENV)/bin/cfn-lint template.yaml
	$(TOOLS_VENV)/bin/statelint statemachine/pipeline.asl.json
	BC_SKIP_MAPPING=TRUE $(TOOLS_VENV)/bin/checkov -f template.yaml --framework cloudformation --quiet --compact
	$(TOOLS_VENV)/bin/bandit -q -r src functions -ll -x functions/layer/spaceport
	find containers -name Dockerfile -exec $(TOOLS_VENV)/bin/hadolint {} +

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) node_modules $(TOOLS_VENV) $(DEMO_DIR) .pytest_cache
