# chaoslab: every set-up step lives here, so a fresh clone needs only `make demo` / `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO ?= experiments/replicas-pod-delete.yaml
PYTEST_ARGS ?=

.PHONY: install demo test test-fast stress bench clean system-deps k8s-local k8s-local-down e2e e2e-nodes e2e-nodes-up e2e-nodes-down

install: $(STAMP)

# Debian packages: chromium + fonts for static chart export (kaleido drives a Chromium;
# without fonts the PNGs "succeed" with no text), docker.io for the tests of the docker
# node provider (real containers stand in for nodes) and the real-node e2e suite, whose
# node image mmdebstrap makes and whose pause binary gcc links statically (libc6-dev);
# nftables and iproute2 for the sim's kernel Service (kube-proxy's nftables rules in a
# private network namespace; without them the sim falls back to its user-space proxy).
# Installed only as root on Debian.
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; \
	  for p in chromium fonts-dejavu-core fonts-liberation docker.io mmdebstrap gcc libc6-dev nftables iproute2; do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $(STAMP)

# Exit code 1 means "ran, but a sweep point missed its SLO": for the demo that is the
# lesson (1 replica has an outage), not a failure of the demo.
demo: install
	@$(BIN)/chaoslab run $(DEMO); code=$$?; \
	if [ $$code -eq 1 ]; then echo "(exit 1: some sweep points missed the SLO, as the demo expects)"; \
	elif [ $$code -ne 0 ]; then exit $$code; fi

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# SIGKILL the engine at random moments of a busy sim cluster a few hundred times, and
# whole `chaoslab run`s (Locust, report) a few dozen, and count what is left
# (tests/sim/test_engine_death_stress.py; make test runs a few of each).
STRESS_ITERATIONS ?= 300
STRESS_RUNS ?= 20
stress: install
	CHAOSLAB_STRESS_ITERATIONS=$(STRESS_ITERATIONS) CHAOSLAB_STRESS_RUNS=$(STRESS_RUNS) \
	  $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/sim/test_engine_death_stress.py

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find results -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

# --- a real Kubernetes control plane on 127.0.0.1 for the end-to-end tests -----------------
# tests/e2e/localcluster.py builds etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and KWOK from the Go module proxy once (cached under
# ~/.cache/chaoslab/k8s, keyed by version; a cold build took 6 minutes on 2 cores), starts them
# with KWOK nodes and writes a kubeconfig. Standard library only: no venv needed.
# Settings: K8S_LOCAL_ARGS="--nodes 3 --node-monitor-grace-period 10 --toleration-seconds 300".
K8S_LOCAL = $(PYTHON) tests/e2e/localcluster.py
K8S_LOCAL_ARGS ?=

k8s-local:
	$(K8S_LOCAL) up $(K8S_LOCAL_ARGS)

k8s-local-down:
	$(K8S_LOCAL) down

# Up (building if needed), the e2e tests, and down again whatever happened (the EXIT
# trap also runs after a failure or Ctrl-C; a failure prints the components' last logs).
e2e: install
	@trap 'code=$$?; if [ $$code -ne 0 ]; then $(K8S_LOCAL) logs --lines 25; fi; \
	       $(K8S_LOCAL) down || { [ $$code -ne 0 ] || code=1; }; exit $$code' EXIT; \
	trap 'exit 130' INT TERM; \
	$(K8S_LOCAL) up $(K8S_LOCAL_ARGS) && \
	$(BIN)/python -m pytest -q -m e2e tests/e2e $(PYTEST_ARGS)

# --- real worker nodes (kubelet, containerd, kube-proxy in Docker containers) ------------
# tests/e2e/realnodes.py builds kubelet + kube-proxy and the node and pod images once
# (cached beside the control plane's binaries), then starts the control plane without
# KWOK, its own dockerd and 1 control-plane + 3 worker node containers on an internal
# network of their own. e2e-nodes runs tests/realnodes (-m realnodes) on them, removes
# everything after (also after a failure or Ctrl-C) and fails if the host's sysctls, nft
# ruleset or network links differ from before. Settings: REAL_NODES_ARGS="--workers 2".
REAL_NODES = $(PYTHON) tests/e2e/realnodes.py
REAL_NODES_ARGS ?=

e2e-nodes-up:
	$(REAL_NODES) up $(REAL_NODES_ARGS)

e2e-nodes-down:
	$(REAL_NODES) down

e2e-nodes: install
	@before=$$(mktemp); $(REAL_NODES) host-state > $$before || exit 1; \
	trap 'code=$$?; if [ $$code -ne 0 ]; then $(REAL_NODES) logs --lines 25; fi; \
	       $(REAL_NODES) down || { [ $$code -ne 0 ] || code=1; }; \
	       $(REAL_NODES) host-state --compare $$before || { [ $$code -ne 0 ] || code=1; }; \
	       rm -f $$before; exit $$code' EXIT; \
	trap 'exit 130' INT TERM; \
	$(REAL_NODES) up $(REAL_NODES_ARGS) && \
	$(BIN)/python -m pytest -q -m realnodes tests/realnodes $(PYTEST_ARGS)
