# Two commands for a fresh machine (Python 3.11+ and Node.js):
#   make demo   installs into .venv and runs the demo (seal, verify, tamper, catch)
#   make test   installs into .venv and runs lint, types and the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

AZURITE := .tools/node_modules/.bin/azurite-blob
AZURITE_VERSION := 3.35.0

.PHONY: demo test install bench clean

$(BIN)/auditseal: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BIN)/auditseal

install: $(BIN)/auditseal

# Azurite (the Azure Storage emulator) for the Blob Storage tests; the tests start and
# stop their own instance on 127.0.0.1.
$(AZURITE):
	npm install --prefix .tools --no-audit --no-fund --silent azurite@$(AZURITE_VERSION)

demo: install
	$(BIN)/auditseal demo --serve

test: install $(AZURITE)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .tools build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
