# The two commands of the README.  Both install what is missing first, so they
# work on a fresh Debian machine (Python 3.11, root) and in CI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= .data
# Debian packages skiff needs at run time or in tests (installed only when missing).
SYSTEM_PACKAGES ?= runc busybox-static docker-registry skopeo apache2-utils nftables iproute2 curl util-linux

.PHONY: up test deps system-deps bytecode bench clean lint

$(BIN)/skiff: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# skiff's modules compiled to bytecode ahead of time (only what changed is redone).
# Python skips writing its bytecode cache where PYTHONDONTWRITEBYTECODE is set (as in
# many CI and container images): every skiff process then compiled the modules it
# imports at each start, which doubled the time to a ready cluster.
bytecode: $(BIN)/skiff
	@$(BIN)/python -m compileall -q src

deps: system-deps $(BIN)/skiff bytecode

# A busybox image (from Debian's busybox-static) is imported on the first run, so
# `kubectl run x --image=busybox --image-pull-policy=IfNotPresent` works offline.
up: deps
	@mkdir -p $(DATA)
	@$(BIN)/skiff image ls --data-dir $(DATA) | grep -q 'library/busybox' || { \
	  $(BIN)/python tests/fixtures/busybox_image.py $(DATA)/busybox.tar >/dev/null && \
	  $(BIN)/skiff image import $(DATA)/busybox.tar --name busybox:latest --data-dir $(DATA); }
	$(BIN)/skiff up --data-dir $(DATA)

test: deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: deps
	$(BIN)/mypy

bench: deps
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DATA) build src/*.egg-info
	find src -name __pycache__ -prune -exec rm -rf {} +
