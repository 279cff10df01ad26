# The two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-versions lint clean rabbitmq

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/python -m malbeacon_connector demo --output demo-bundle.json

# The whole suite on the pinned pycti, then the main end-to-end cases on every supported one.
test: $(VENV)/.dev rabbitmq
	$(BIN)/ruff check
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/python tests/pycti_matrix.py $(PYCTI_VERSIONS)

# Only the matrix (PYCTI_VERSIONS="6.8.17 7.261026.0" for some versions).
test-versions: $(VENV)/.dev rabbitmq
	$(BIN)/python tests/pycti_matrix.py $(PYCTI_VERSIONS)

# The end-to-end tests start a private RabbitMQ: Debian's rabbitmq-server, installed when missing.
rabbitmq:
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server; \
	fi

lint: $(VENV)/.dev
	$(BIN)/ruff check
	$(BIN)/ruff format --check

clean:
	rm -rf $(VENV) .venv-versions demo-bundle.json
