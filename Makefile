# Set-up and entry points. `make demo` runs a simulated session end to end; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: venv
	@mkdir -p out
	$(BIN)/steamer sim run scenarios/demo.json --trace out/demo-trace.jsonl

test: venv
	$(BIN)/pytest -n 2 tests

bench: venv
	$(BIN)/steamer dev bench

clean:
	rm -rf $(VENV) out build
