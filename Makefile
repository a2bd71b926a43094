# Set-up and entry points. `make demo` runs a simulated session end to end; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

APP := host/steamer/app
VENDOR := $(APP)/static/vendor
# The browser the app's tests drive (Debian's; Playwright downloads none).
CHROMIUM := /usr/bin/chromium

.PHONY: venv demo test soak bench clean browser

venv: $(STAMP) $(VENDOR)/uPlot.iife.min.js

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# The app's npm packages, pinned by its package-lock.json: uPlot goes into its static
# files (no CDN: the app works offline), axe-core stays for the tests.
$(VENDOR)/uPlot.iife.min.js: $(APP)/package.json $(APP)/package-lock.json
	cd $(APP) && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(APP)/node_modules/uplot/dist/uPlot.iife.min.js $(APP)/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/

browser:
	test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

demo: venv
	@mkdir -p out
	$(BIN)/steamer sim run scenarios/demo.json --trace out/demo-trace.jsonl

test: venv browser
	$(BIN)/pytest -n 2 tests

# The randomized tests at soak length (an hour and a half on 2 cores before the port
# models ran 1,450 rounds each, ~16 min each in parallel, which add about 25 min): 1,000
# nominal sessions for false trips, 1,000 chaos rounds of cut syncs and pushes on the
# sim's buffering and 1,450 on each port model (~1,000 cuts each), 10,000 sequences of
# the limits state machine on the sim board and 2,000 on each real board module (~3 min
# each).
soak: venv
	STEAMER_SOAK_SESSIONS=1000 STEAMER_BLE_ROUNDS=1000 STEAMER_BLE_PORT_ROUNDS=1450 \
		STEAMER_LIMITS_EXAMPLES=10000 STEAMER_LIMITS_PORT_EXAMPLES=2000 \
		$(BIN)/pytest -n 2 tests/sim/test_false_trips.py \
		tests/ble/test_ble_sync.py::test_randomized_cuts_during_syncs_and_pushes \
		tests/device/test_limits_stateful.py \
		tests/boards/test_portsim_limits.py::test_no_sequence_breaks_the_limits_on_a_real_board

bench: venv
	$(BIN)/steamer dev bench

clean:
	rm -rf $(VENV) out build $(APP)/node_modules $(VENDOR)
