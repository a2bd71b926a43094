# Set-up and entry points. `make demo` runs a simulated session end to end; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test soak bench clean

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

# The randomized tests at soak length (about an hour on 2 cores): 1,000 nominal sessions
# for false trips, 1,000 chaos rounds of cut syncs and pushes.
soak: venv
	STEAMER_SOAK_SESSIONS=1000 STEAMER_BLE_ROUNDS=1000 $(BIN)/pytest -n 2 \
		tests/sim/test_false_trips.py tests/ble/test_ble_sync.py::test_randomized_cuts_during_syncs_and_pushes

bench: venv
	$(BIN)/steamer dev bench

clean:
	rm -rf $(VENV) out build
