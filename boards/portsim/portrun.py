"""Runs one scenario on a real board's code: boards/<board>/board.py with
boards/common/realboard.py and the firmware (fw.main.run), on the port models of this
folder (machine, onewire, time, rp2/esp32), wired to the sim's plant and world
(boards/sim/plant.py, world.py: the scenario's events, resets, trace and summary).
Prints the summary as one JSON line, with the port figures under "port".

    PORTSIM_PORT=esp32|rp2 micropython -X heapsize=... boards/portsim/portrun.py \
        SCENARIO.json TRACE|"" BOARD_PY [--quiet] [--air ADDR --name N --speed X]

With --air (`steamer sim serve --board`, steamer_sim.portsim.serve_on_board) the board
has a radio on the simulated air: the sim's `bluetooth` module (a C module's stand-in, as
machine's are) with the board's port model (NimBLE on the C3: its IRQs run on the stack's
own thread; BTstack on the Pico W: scheduled), advertising as N. realboard's _radio()
finds it as it finds the port's own, and its wait_tick leaves the IRQs to arrive on their
own. The virtual clock is then paced to the host's at X virtual seconds a second, so a
host's timeouts and the air's connection events mean what they mean next to a board.

MICROPYPATH: this folder, the board's folder, boards/common, boards/sim, device,
protocol (the board's board.py before the sim's). Only MicroPython's C modules are
stand-ins: the board module, realboard and the firmware run as they ship. tests/boards/
test_portsim.py and `steamer dev bench --parts boards` run it.

The wiring (hookup.WIRING, per board, from the board's README): each period the plant
gets what the outputs did (the step PWM's steps, the SSR, the keep-alive's last edge,
the relay) and the inputs follow the plant (NTC divider voltages, float/tilt/button
levels, the encoder's edges as the pump moves (Encoder), the podlet's chip on the bus).
"""
import json
import os
import sys
import time

import machine
import onewire
import portclock
import timedflash
from pintable import pin_table
from fw import codes
from fw import main
from hookup import WIRING, Encoder, calibrate, mount, ntc_uv, set_level, set_uv
from plant import Plant
from flash import PowerCut
from timedflash import TimedFlash
from unit import divider_uv  # noqa: F401 - the tests' (portrun.divider_uv)
from world import SimEnd, SimReset, World

_US_PER_PERIOD = 100000

class Slot:
    """The podlet slot as the world moves it (info, v, bus_error)."""

    def __init__(self):
        self.info = None
        self.v = 0
        self.bus_error = False


class Wiring:
    """The plant and the world around a real board: what boards/sim/board.py's SimBoard
    is to World, without being a board (the board is the real one)."""

    def __init__(self, board_name, board_py, scenario, trace_path, progress, radio=None,
                 speed=0.0, ble_name=None):
        machine.power_on()      # the first boot is a power-on: the RTC from the port's start
        self.name = board_name
        self.pin = pin_table(board_py)
        self.plant = Plant(scenario["plant"], scenario["seed"])
        self.now_ms = 0
        self.commands = []
        # The sim's radio (--air): the world takes `steamer sim` events from it; the
        # name the board advertises with it.
        self.radio = radio
        self.ble_name = ble_name
        # Pacing (--speed): virtual time against the host's, from an anchor (wall ms,
        # virtual us) moved when the run falls far behind (a long flash write, a GC).
        self.speed = speed
        self.pace_at = [time.wall_ms(), 0]
        self.app = None
        self.board = None
        self.podlet = Slot()
        self.button_until_ms = 0
        self.held = 0
        self.fed_ms = 0
        self.watchdog = self
        self.steps_seen = 0
        self.image_of = None
        self.image = None
        self.flash = TimedFlash("%s-flash.img" % board_name)
        timedflash.DEVICE[0] = self.flash
        # Power cuts inside flash writes ($PORTSIM_CUT_WRITES, steamer_sim.portsim's
        # cut_writes): the k-th boot's during its n-th program or erase.
        cuts = os.getenv("PORTSIM_CUT_WRITES") or ""
        self.cut_writes = [int(n) for n in cuts.split(",") if n]
        self.encoder = Encoder(self.pin, self.plant)
        # $PORTSIM_ADC_CAL=1 (steamer_sim.portsim's adc_cal): the unit is calibrated at
        # the factory (hookup.calibrate) before its first boot, as a shipped one is.
        self.adc_cal = os.getenv("PORTSIM_ADC_CAL") == "1"
        self.stats = {"boots": 0, "service_us_max": 0, "pump_over_nl": 0}
        self.world = World(self, scenario, trace_path, progress)
        portclock.HOOK[0] = self
        self.sync_inputs()

    # ---- the clock's hooks ---------------------------------------------------------
    def next_us(self, now_us, until_us):
        b = (self.now_ms + 100) * 1000
        return b if now_us < b < until_us else until_us

    def on_time(self, now_us):
        try:
            bytearray(16)
        except MemoryError:
            # The heap is locked: a file's finaliser writing the flash from inside a
            # collection (see boards/sim/flash.py). The world catches up at the next sleep.
            return
        if self.speed > 0:
            self.pace(now_us)
        while now_us >= (self.now_ms + 100) * 1000:
            if self.radio is not None:
                self.radio.poll(0)      # hands over the air's `steamer sim` events
            self.outputs_to_plant()
            self.world.advance()
        if machine.watchdog_bitten(now_us):
            raise SimReset(codes.RESET_WDT)
        world = self.world
        while world.stalled:
            # loop_stall: the firmware's loop hangs here; periods pass, soft IRQs still
            # run between its bytecodes, until the watchdog bites.
            t = (self.now_ms + 100) * 1000
            portclock.advance(t - portclock.NOW[0])
            portclock.run_pending()
            self.outputs_to_plant()
            world.advance()
            if self.plant.heater_w == 0.0:
                world.metrics.stalled_heater_off(self.now_ms)
            world.trace.period(self.now_ms, self.app, self.plant)
            if machine.watchdog_bitten(t):
                raise SimReset(codes.RESET_WDT)

    def pace(self, now_us):
        """Holds the host's clock to the virtual one at self.speed: the radio's reader
        thread hears the air while this sleeps, as a board's stack does while it waits."""
        wall0, virt0 = self.pace_at
        left = time.ticks_diff(time.ticks_add(wall0, int((now_us - virt0) / 1000 / self.speed)),
                               time.wall_ms())
        if left > 0:
            time.wall_sleep_ms(left)
        elif left < -2000:
            self.pace_at[0] = time.wall_ms()    # far behind: a new anchor from here
            self.pace_at[1] = now_us

    def wait_tick(self, idle=None):
        # World.crashed(): the hung firmware; periods pass until the watchdog bites.
        portclock.sleep_us(_US_PER_PERIOD)

    # ---- outputs to the plant, inputs from it --------------------------------------------
    def outputs_to_plant(self):
        p = self.plant
        pins = machine.PINS
        now_ms = self.now_ms + 100
        pwm = machine.PWMS.get(self.pin["PUMP_STEP"])
        steps = 0
        if pwm is not None:
            pwm.settle()
            steps = pwm.steps - self.steps_seen
            self.steps_seen = pwm.steps
        # Steps over the period just ended, as the average rate the plant integrates.
        p.pump_nl_s = steps * 2 * 1000 / 100
        p.pump_cmd_ms = now_ms
        ssr = pins.get(self.pin["HEATER_SSR"])
        kick = pins.get(self.pin["HEATER_KEEPALIVE"])
        p.heater_pm = 1000 if ssr is not None and ssr.out else 0
        p.heater_cmd_ms = kick.write_us // 1000 if kick is not None and kick.writes else -10 ** 9
        relay = pins.get(self.pin["CUTOFF_RELAY"])
        p.cutoff_open = relay is None or not relay.out

    def sync_inputs(self):
        p = self.plant
        now_us = self.now_ms * 1000
        if portclock.NOW[0] < now_us:
            portclock.NOW[0] = now_us       # the world went on without the clock (power off)
        pin = self.pin
        set_uv(pin["BOILER_NTC"], ntc_uv(self.name, "boiler", p.boiler_raw))
        set_uv(pin["OUTLET_NTC"], ntc_uv(self.name, "outlet", p.outlet_raw))
        # Float closed (0) = water present, tilt closed = upright, button closed = held.
        self._level("WATER_FLOAT", p.water_low())
        self._level("TILT", p.tilted())
        self._level("BUTTON", 0 if self.held else 1)
        self._podlet_bus()

    def _level(self, name, v):
        set_level(self.pin[name], v)

    def _podlet_bus(self):
        slot = self.podlet
        if slot.info is not self.image_of:
            self.image_of = slot.info
            self.image = bytes.fromhex(slot.info.get("image_hex", "")) if slot.info else None
        if onewire.BUSES:
            bus = onewire.BUSES[-1]
            bus.image = self.image
            bus.break_after = 32 if slot.bus_error else 0

    # ---- what World asks of its board ----------------------------------------------------
    def poll(self):
        if self.commands:
            return self.commands.pop(0)
        return None

    def press_button(self, ms):
        self.held = 1
        self.button_until_ms = self.now_ms + ms

    def release_button(self):
        if self.now_ms >= self.button_until_ms:
            self.held = 0

    def keep_figures(self):
        """The figures of this boot's peripherals, before a reset clears them."""
        st = self.stats
        pin = self.pin
        kick = machine.PINS.get(pin["HEATER_KEEPALIVE"])
        pwm = machine.PWMS.get(pin["PUMP_STEP"])
        if kick is not None:
            st["keepalive_gap_us_max"] = max(st.get("keepalive_gap_us_max", 0), kick.gap_us_max)
        if pwm is not None:
            pwm.settle()
            st["pump_late_steps"] = st.get("pump_late_steps", 0) + pwm.late_steps
            pwm.late_steps = pwm.late_us = 0
        for w in machine.WDTS:
            st["feed_gap_us_max"] = max(st.get("feed_gap_us_max", 0), w.gap_us_max)
        b = self.board
        if b is not None:
            st["pulses_counted"] = st.get("pulses_counted", 0) + b.pump.pulses()
            b.pump.encoder.start_at(0)

    def firmware_gone(self):
        self.keep_figures()
        if self.radio is not None:
            self.radio.active(False)    # the stack goes down with the chip
        self.app = None
        self.board = None
        self.commands = []
        machine.reset_state(machine.CAUSE[0])
        onewire.BUSES.clear()
        self.plant.heater_pm = 0
        self.plant.pump_nl_s = 0
        self.steps_seen = 0

    def boot(self, cause):
        if cause == codes.RESET_POWER:
            machine.power_on()
        elif cause == codes.RESET_WDT:
            machine.chip_reset(machine.WDT_RESET)
        else:
            machine.reset_state(machine.SOFT_RESET)

    def telemetry(self, app):
        self.app = app
        self.world.telemetry(app)

    # ---- the board -------------------------------------------------------------------------
    def mount(self):
        """The port's boot (hookup.mount), with this scenario's factory key."""
        import realboard
        mount(self.flash, realboard.Board.data_dir, self.world.scenario.get("mfg_public_hex"))

    def make_board(self, board_mod):
        self.mount()
        if self.adc_cal:
            self.adc_cal = False
            import realboard
            calibrate(self.name, board_mod, self.pin, realboard.Board.data_dir)
            self.sync_inputs()      # the plug out, the NTCs back in
        self.stats["boots"] += 1
        if self.cut_writes:
            self.flash.cut_at_write(self.cut_writes.pop(0))
        portclock.EDGE_PINS.append(self.encoder)
        b = board_mod.make()
        self.board = b
        b.host_link = self
        if self.ble_name:
            b.ble_name = self.ble_name      # what fw.ble advertises (a board's build sets it)
        real_emit = b.emit
        world = self.world

        def emit(record):
            world.emit(record)
            real_emit(record)

        b.emit = emit
        b.telemetry = self.telemetry
        # service() runs between the step's watchdog feed and telemetry: time it.
        wdt = b.watchdog
        stats = self.stats
        mark = [0]

        class Feed:
            def feed(self):
                wdt.feed()
                mark[0] = portclock.NOW[0]

        b.watchdog = Feed()

        def telemetry(app):
            d = portclock.NOW[0] - mark[0]
            if d > stats["service_us_max"]:
                stats["service_us_max"] = d
            self.telemetry(app)

        b.telemetry = telemetry
        self._podlet_bus()
        return b


def figures(wiring):
    """The port figures of the run."""
    wiring.keep_figures()
    now = portclock.NOW
    f = wiring.flash
    st = wiring.stats
    bus = onewire.BUSES[-1] if onewire.BUSES else None
    return {"port": machine.PORT, "boots": st["boots"], "scheduled": now[2],
            "sched_lost": now[3], "edges_collapsed": now[4],
            "encoder_edges": wiring.encoder.edges, "pulses_counted": st.get("pulses_counted", 0),
            "flash_busy_ms": f.busy_us // 1000, "flash_longest_op_ms": f.longest_us // 1000,
            "flash_erases": f.erases, "onewire_busy_ms": bus.busy_us // 1000 if bus else 0,
            "service_ms_max": st["service_us_max"] // 1000,
            "feed_gap_ms_max": st.get("feed_gap_us_max", 0) // 1000,
            "keepalive_gap_ms_max": st.get("keepalive_gap_us_max", 0) // 1000,
            "pump_late_nl": st.get("pump_late_steps", 0) * 2,
            "plant_pumped_ul": round(wiring.plant.pumped_nl / 1000.0, 3)}


def _radio(board_name, air, ble_name):
    """The sim's bluetooth on `air` with the board's port model, as BLE() gives it."""
    import bluetooth
    bluetooth.AIR = air
    bluetooth.NAME = ble_name
    bluetooth.PORT = bluetooth.BOARD_PORTS[board_name]
    return bluetooth.BLE()


def run(scenario, trace_path, board_py, progress, air=None, ble_name="steamer", speed=0.0):
    import board as board_mod
    name = board_mod.Board.name
    port = WIRING[name]["port"]
    if port != machine.PORT:
        raise SystemExit("portrun: board %s runs on the %s port, not PORTSIM_PORT=%s"
                         % (name, port, machine.PORT))
    time.set_port_epoch(2000 if machine.ESP32 else 1970)
    radio = _radio(name, air, ble_name) if air else None
    wiring = Wiring(name, board_py, scenario, trace_path, progress, radio, speed,
                    ble_name if air else None)
    world = wiring.world
    try:
        while True:
            try:
                main.run(wiring.make_board(board_mod))
            except SimReset as r:
                world.reset(r)
            except machine.BootReset:
                world.reset(SimReset(codes.RESET_SOFT))
            except PowerCut:
                # Inside a flash write ($PORTSIM_CUT_WRITES): off for a second.
                world.reset(SimReset(codes.RESET_POWER, 1.0))
            except SimEnd:
                raise
            except Exception as e:  # a firmware bug: the board hangs until the watchdog
                sys.print_exception(e, sys.stderr)
                world.reset(world.crashed())
    except SimEnd:
        pass
    summary = world.summary(0.0)
    summary["port"] = figures(wiring)
    return summary


def _options(argv):
    opts = {"air": None, "name": "steamer", "speed": 0.0}
    i = 4
    while i < len(argv):
        a = argv[i]
        if a in ("--air", "--name", "--speed") and i + 1 < len(argv):
            v = argv[i + 1]
            opts[a[2:]] = float(v) if a == "--speed" else v
            i += 1
        elif a != "--quiet":
            raise SystemExit("portrun: unknown option %r" % a)
        i += 1
    if opts["air"] and not opts["speed"] > 0:
        raise SystemExit("portrun: --air needs --speed X (virtual seconds per second, > 0)")
    return opts


def _main():
    if "--no-run" in sys.argv:
        return      # imported for its helpers (tests)
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    opts = _options(sys.argv)
    if opts["air"]:
        # The link's modules first, on a heap still empty: they need large blocks.
        from fw import ble  # noqa: F401
    with open(sys.argv[1]) as f:
        scenario = json.load(f)
    summary = run(scenario, sys.argv[2] or None, sys.argv[3], "--quiet" not in sys.argv,
                  opts["air"], opts["name"], opts["speed"])
    print(json.dumps(summary))


_main()
