# Every target installs what it needs; `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS_VENV := .tools
DEMO_DIR ?= demo-output

.PHONY: setup setup-node setup-tools test test-fast lint lint-cloud demo cloud-demo bench gpu-bundle gpu-check clean

setup: $(STAMP) node_modules/.installed src/spaceport/viewer/static/playcanvas.min.mjs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch 2.13.0 first: the CPU wheel; asking for torch through a range could pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[stages,cloud,client,dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup-node: node_modules/.installed

# The viewer ships the pinned engine inside the package: the page works offline, without a CDN.
src/spaceport/viewer/static/playcanvas.min.mjs: node_modules/.installed
	mkdir -p $(@D)
	cp node_modules/playcanvas/build/playcanvas.min.mjs $@

test: setup-browser setup setup-tools setup-docker
	$(BIN)/pytest -q

# The viewer's browser tests drive Debian's chromium and fail without it (a skip would let a broken viewer pass).
# As root, apt installs it; anyone else is told the one command to run, before any test starts.
CHROMIUM := /usr/bin/chromium
.PHONY: setup-browser
setup-browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing chromium for the browser tests (apt-get)"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "make test needs Debian's chromium ($(CHROMIUM)) for the browser tests:" \
				"run sudo apt-get install -y chromium, then make test" >&2; \
			exit 1; \
		fi; \
	fi

test-fast: setup
	$(BIN)/pytest -q -m "not slow and not docker"

# The container and `sam local` tests (marker `docker`) run the images `make images` builds on a Docker engine.
# `make docker-engine` uses a running engine or, as root with apt, installs Debian's docker.io and starts dockerd
# (tools/docker-engine.sh). `make test` does that, then builds what is missing and the functions; without an engine
# it says how to get one and the docker tests skip, saying the same, except in CI (SPACEPORT_REQUIRE_DOCKER=1),
# where they fail.
.PHONY: docker-engine images sam-build setup-docker
docker-engine:
	tools/docker-engine.sh

# Stage images from the real Dockerfiles (linux/amd64), the Lambda runtime for `sam local` and moto's server, on
# local stand-in bases where the public ones cannot be pulled (containers/local/README.md). One build at a time.
images: setup
	containers/local/build-images.sh

sam-build: setup-tools
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam build

setup-docker: setup setup-tools
	@if tools/docker-engine.sh; then \
		$(MAKE) --no-print-directory images sam-build; \
	elif [ "$${SPACEPORT_REQUIRE_DOCKER:-0}" = 1 ]; then \
		exit 1; \
	else \
		echo "The container and sam local tests will be skipped (see above)." >&2; \
	fi

lint: setup
	$(BIN)/ruff check src tests benchmarks functions containers
	$(BIN)/ruff format --check src tests benchmarks functions containers

demo: setup
	$(BIN)/spaceport sample-scene $(DEMO_DIR)/sample-photos
	$(BIN)/spaceport run $(DEMO_DIR)/sample-photos --out $(DEMO_DIR)/run --preset default --iterations 2000
	@echo "Open the viewer: $(BIN)/spaceport view $(DEMO_DIR)/run"

# The cloud pipeline without an AWS account: a local stack (moto's server, our state machine and functions, a
# SageMaker stand-in running the real stages: sfm and compress in the images of `make images` when a Docker engine is
# there) that `spaceport cloud` submits the sample scene to, follows and downloads a verified scene from.
CLOUD_DEMO_DIR ?= $(DEMO_DIR)/cloud
cloud-demo: setup
	@if tools/docker-engine.sh; then $(MAKE) --no-print-directory images; \
	else echo "No Docker engine: the stand-in runs sfm and compress as processes instead of containers." >&2; fi
	$(BIN)/python -m spaceport.cloud.local_stack demo --work $(CLOUD_DEMO_DIR)
	@echo "Open the viewer: $(BIN)/spaceport view $(CLOUD_DEMO_DIR)/scene"

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

# The GPU check (benchmarks/gpu_check.py). `make gpu-bundle`, here with PyPI, packs into .gpu-bundle/ what a GPU
# machine without internet lacks: CPython 3.12 x86-64 wheels of benchmarks/gpu_bundle.txt, gsplat's sdist and the
# viewer's engine. pip matches manylinux tags exactly, hence the list. `make gpu-check` runs there, with its own
# python3 and torch: it installs the bundle offline, builds gsplat, runs the CUDA tests and trains the sample.
GPU_BUNDLE := .gpu-bundle
GSPLAT_VERSION := 1.5.3
GPU_PLATFORMS := $(foreach n,28 27 26 25 24 23 22 21 20 19 18 17,--platform manylinux_2_$(n)_x86_64) \
	--platform manylinux2014_x86_64
gpu-bundle: setup
	rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)
	# gsplat's sdist as PyPI has it; BUILD_NO_CUDA=1 only lets pip read its metadata on a machine without CUDA.
	BUILD_NO_CUDA=1 $(BIN)/pip download --quiet --no-deps --no-binary :all: --no-build-isolation \
		-d $(GPU_BUNDLE) gsplat==$(GSPLAT_VERSION)
	$(BIN)/pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
		$(GPU_PLATFORMS) -d $(GPU_BUNDLE) -r benchmarks/gpu_bundle.txt
	# numpy (16 MB) is on the GPU machine already; the resolver fetched it for pycolmap.
	rm -f $(GPU_BUNDLE)/numpy-*.whl
	cp src/spaceport/viewer/static/playcanvas.min.mjs $(GPU_BUNDLE)/
	$(BIN)/python -m benchmarks.gpu_check size --bundle $(GPU_BUNDLE) --max-mib 60

gpu-check:
	$(PYTHON) -m benchmarks.gpu_check run --bundle $(GPU_BUNDLE)

clean:
	rm -rf $(VENV) node_modules $(TOOLS_VENV) $(DEMO_DIR) .pytest_cache $(GPU_BUNDLE) gpu-check-output
