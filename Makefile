# PaiTIENT Secure Model Service — every command a developer or CI runs.
# `make demo` sets everything up and runs the main job; `make test` runs every test.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/.local/bin
# A missing real component fails instead of skipping (tests/prerequisites.py); CI=true does the same.
REQUIRE_ALL := PAITIENT_REQUIRE_ALL=1
export PATH := $(BIN):$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup node-packages test-packages demo up down cluster cluster-build cluster-down cluster-status cluster-clean-cache operator \
        images image-tools images-test images-clean-cache bench-images \
        bench-control-plane bench-operator bench-keys bench-gateway bench-reactions bench-model-pod bench-limits lint typecheck unit integration sdk-test sdk-unasync chart-lint test clean \
        vllm-flags vllm-test settings-tables

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e 'sdk/python[dev]'
	touch $@

$(BIN)/kubectl $(BIN)/helm:
	scripts/install-kube-tools.sh $(BIN)

# The JavaScript SDK has no runtime dependencies; its devDependency (the official openai package,
# used by the integration tests) comes from the lockfile.
sdk/js/node_modules/.package-lock.json: sdk/js/package.json sdk/js/package-lock.json
	cd sdk/js && npm ci --no-audit --no-fund --loglevel=error

setup: $(VENV)/.installed $(BIN)/kubectl sdk/js/node_modules/.package-lock.json node-packages test-packages ## create .venv, install the packages, kubectl, helm, the JS SDK's dev packages, the node's and the tests' Debian packages

node-packages: ## the real node's Debian packages: containerd, runc, CNI plugins, iptables, ipset (apt-get; quiet when done)
	@scripts/install-node-packages.sh

test-packages: ## the Debian packages tests run for real: redis-server (the shared store) (apt-get; quiet when done)
	@scripts/install-test-packages.sh

demo: setup images cluster-build ## everything on this machine: cluster with its real node, the chart; deploy (real vLLM on CPU) and generate via the SDK
	@$(PY) -m paitient_localcluster.stack demo
	@KUBECONFIG=$(CURDIR)/.local/cluster/admin.kubeconfig kubectl get nodes -L nvidia.com/gpu.product,nvidia.com/gpu.count
	@KUBECONFIG=$(CURDIR)/.local/cluster/admin.kubeconfig kubectl get md -A
	@KUBECONFIG=$(CURDIR)/.local/cluster/admin.kubeconfig kubectl get pods -o wide -n paitient-system
	@KUBECONFIG=$(CURDIR)/.local/cluster/admin.kubeconfig kubectl get pods -o wide -n tenant-demo

up: setup images cluster-build ## the cluster and the chart on its real node, the front door on 127.0.0.1 by a relay; prints how to call it
	@$(PY) -m paitient_localcluster.stack up

down: ## stop everything `make up` or `make demo` started (relay, cluster, its pods, namespaces, mounts, cgroups)
	@$(PY) -m paitient_localcluster.stack down

cluster: setup images cluster-build ## start (or reuse) the local cluster (control plane, real node, simulated GPU nodes); the last line is the kubeconfig path
	@$(VENV)/bin/paitient-localcluster up

cluster-build: setup ## build the cluster's upstream programs from the Go module proxy, once per version (minutes cold, instant cached)
	@$(VENV)/bin/paitient-localcluster build

cluster-down: ## stop every process of the local cluster and remove its namespaces and cgroups
	@$(VENV)/bin/paitient-localcluster down

cluster-status: ## which control-plane processes run
	@$(VENV)/bin/paitient-localcluster status

cluster-clean-cache: ## delete the cached cluster binaries (the next `make cluster` rebuilds)
	rm -rf "$${PAITIENT_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/paitient-localcluster}"

operator: setup ## run the operator against the current kubeconfig (local cluster if KUBECONFIG is unset)
	@if [ -z "$$KUBECONFIG" ]; then export KUBECONFIG=$(CURDIR)/.local/cluster/operator.kubeconfig; \
	 $(VENV)/bin/paitient-localcluster up >/dev/null; \
	 $(PY) -m paitient_common.resources.install; fi; \
	 $(VENV)/bin/paitient-operator

image-tools: ## the Debian tools the images need (mmdebstrap, podman, runc, skopeo, zstd, gcc)
	@scripts/install-image-tools.sh

images: setup image-tools ## build every container image into ~/.cache/paitient-images (seconds when nothing changed)
	@$(PY) -m paitient_images build

images-test: images ## run each image under podman the way its pod runs it (starts the local cluster if needed)
	$(VENV)/bin/pytest -q -m images tests/images

images-clean-cache: ## delete the built images, layers and the tiny model (the next `make images` rebuilds)
	rm -rf "$${PAITIENT_IMAGES_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/paitient-images}"

bench-images: setup image-tools ## cold and warm `make images` into a scratch cache: times and sizes
	$(PY) benchmarks/bench_images.py $(ARGS)

bench-control-plane: setup ## figures of the local control plane (add ARGS=--cold for a cold build)
	$(PY) benchmarks/bench_control_plane.py $(ARGS)

bench-operator: setup ## 500 ModelDeployments at once on a throwaway cluster
	$(PY) benchmarks/bench_operator.py $(ARGS)

bench-keys: setup ## write -> effect of key changes (revoke, suspend, tier) at the front door and a gateway
	$(PY) benchmarks/bench_keys.py $(ARGS)

bench-gateway: setup ## gateway vs. direct vs. LiteLLM proxy: latency, throughput, profile (installs wrk, LiteLLM, py-spy)
	scripts/install-bench-tools.sh
	$(PY) benchmarks/bench_gateway.py $(ARGS)

bench-reactions: setup ## how fast a hung model, a ModelDeployment and an unplaceable GPU one are answered; SIGKILL under load
	$(PY) benchmarks/bench_reactions.py $(ARGS)

bench-limits: setup ## overshoot of a tier limit under a burst through 2 gateways, shared store vs per replica; the store's added latency (ARGS=--smoke: seconds)
	$(PY) benchmarks/bench_limits.py $(ARGS)

bench-model-pod: setup images ## a CPU ModelDeployment on the real node: kubectl apply -> Ready -> first completion (real vLLM), its memory
	$(PY) benchmarks/bench_model_pod.py $(ARGS)

lint: setup ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup ## mypy (strict)
	$(VENV)/bin/mypy

unit: setup ## unit tests only (no cluster)
	$(VENV)/bin/pytest tests/unit -q

integration: setup ## integration tests against the local control plane (started if needed)
	$(VENV)/bin/pytest tests/integration -q

chart-lint: setup ## the Helm chart: helm lint --strict, rendered objects against the Kubernetes schemas, RBAC, Argo CD check
	$(VENV)/bin/pytest tests/unit/test_helm_chart.py -q

sdk-test: setup ## the SDKs' own lint, types and tests (Python and JavaScript); the generated sync Python modules must match their async sources
	cd sdk/python && ../../$(PY) scripts/unasync.py --check \
	  && ../../$(VENV)/bin/ruff check . && ../../$(VENV)/bin/ruff format --check . \
	  && ../../$(VENV)/bin/mypy --strict paitient_secure_model scripts && ../../$(VENV)/bin/pytest -q -p no:cacheprovider
	cd sdk/js && npm test

sdk-unasync: $(VENV)/.installed ## write the Python SDK's sync modules (_client.py, _streaming.py) from their async sources
	cd sdk/python && ../../$(PY) scripts/unasync.py

test: setup lint typecheck sdk-test images cluster-build ## lint, type checks, SDK tests, the images, and every test (starts the local cluster when none runs)
	$(REQUIRE_ALL) $(VENV)/bin/pytest -q

vllm-test: images ## only the gateway's contract tests against real vLLM (the vllm-cpu image) and vLLM's parser on the operator's arguments
	$(VENV)/bin/pytest -q -m real_vllm tests/vllm

vllm-flags: setup ## regenerate the operator's list of the pinned vLLM's flags (PAITIENT_VLLM_PYTHON: a Python with that vLLM)
	@test -n "$$PAITIENT_VLLM_PYTHON" || { echo "set PAITIENT_VLLM_PYTHON to a Python that has the pinned vLLM" >&2; exit 2; }
	"$$PAITIENT_VLLM_PYTHON" scripts/vllm_flags.py > operator/paitient_operator/builders/vllm_flags.json.new
	mv operator/paitient_operator/builders/vllm_flags.json.new operator/paitient_operator/builders/vllm_flags.json

settings-tables: $(VENV)/.installed ## write docs/configuration.md's settings tables from the components' settings models
	$(PY) scripts/settings_tables.py docs/configuration.md

clean: ## remove the virtualenv and local state (not the binary cache)
	-$(VENV)/bin/paitient-localcluster down
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache
