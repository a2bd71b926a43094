"""Runs one scenario on a real board's code: boards/<board>/board.py with
boards/common/realboard.py and the firmware (fw.main.run), on the port models of this
folder (machine, onewire, time, rp2/esp32), wired to the sim's plant and world
(boards/sim/plant.py, world.py: the scenario's events, resets, trace and summary).
Prints the summary as one JSON line, with the port figures under "port".

    PORTSIM_PORT=esp32|rp2 micropython -X heapsize=... boards/portsim/portrun.py \
        SCENARIO.json TRACE|"" BOARD_PY [--quiet]

MICROPYPATH: this folder, the board's folder, boards/common, boards/sim, device,
protocol (the board's board.py before the sim's). Only MicroPython's C modules are
stand-ins: the board module, realboard and the firmware run as they ship. tests/boards/
test_portsim.py and `steamer dev bench --parts boards` run it.

The wiring (WIRING below, per board, from the board's README): each period the plant
gets what the outputs did (the step PWM's steps, the SSR, the keep-alive's last edge,
the relay) and the inputs follow the plant (NTC divider voltages, float/tilt/button
levels, the encoder's edges as the pump moves (Encoder), the podlet's chip on the bus).
"""
import json
import os
import sys
import time
import vfs

import machine
import onewire
import portclock
import timedflash
from pintable import pin_table
from fw import codes
from fw import main
from plant import PARAMS, Plant
from flash import PowerCut
from timedflash import TimedFlash
from unit import divider_uv, unit_divider_uv  # noqa: F401 - divider_uv: the tests' too
from world import SimEnd, SimReset, World

_US_PER_PERIOD = 100000

# Per board: how each NTC divider puts its voltage on the ADC pin. "low": the NTC from
# the pin to ground, its pull-up to 3.3 V (the plant's counts are that ratio);
# ("high", R): the NTC from 3.3 V to the pin, R ohms to ground. "unit": the unit's rail
# and resistors (unit.py) reach the reading, drawn per $PORTSIM_CHIP_SEED: on the C3,
# whose ADC measures volts; the rp2's is ratiometric to the rail, which cancels there,
# and its resistors are left nominal.
WIRING = {
    "picow": {"boiler": "low", "outlet": "low", "port": "rp2", "unit": False},
    # boards/esp32c3/README.md: the boiler NTC on the 3.3 V side, 560 ohm to ground.
    "esp32c3": {"boiler": ("high", 560), "outlet": "low", "port": "esp32", "unit": True},
}



def _nominal_uv(raw, pullup_ohm, how, _name):
    return divider_uv(raw, pullup_ohm, how)


class Encoder:
    """The pump head's encoder: an edge per 100 nl the pump really moves, at the time it
    moves it, from the step PWM's rate (2 nl per step, times the plant's calibration);
    none while the pump stalls, the pump's fastest while it runs away. It is an edge
    source of portclock (next_edge, edges_until) feeding the board's encoder pin
    (machine.gpio_edge: its IRQ, or the rp2 PWM slice counting it)."""

    def __init__(self, wiring):
        self.w = wiring
        self.acc = 0                    # nl * 1e6 toward the next edge
        self.last_us = portclock.NOW[0]
        self.frac = 0                   # Hz * us toward the step under way (as machine.PWM)
        self.inc = int(2000000 * wiring.plant.pump_cal)     # nl * 1e6 per step
        self.edges = 0

    def _hz(self):
        p = self.w.plant
        if not p.powered or "pump_stall" in p.faults:
            return 0
        if "pump_runaway" in p.faults:
            return PARAMS["pump_max_nl_s"] // 2
        pwm = machine.PWMS.get(self.w.pin["PUMP_STEP"])
        return pwm.hz if pwm is not None and pwm.duty else 0

    def _steps_to_edge(self):
        return (100000000 - self.acc + self.inc - 1) // self.inc

    def next_edge(self):
        hz = self._hz()
        if not hz:
            return None
        return self.last_us + (self._steps_to_edge() * 1000000 - self.frac + hz - 1) // hz

    def edges_until(self, to_us, blocked):
        hz = self._hz()
        if not hz:
            self.last_us = to_us
            return
        pin_no = self.w.pin["PUMP_ENCODER"]
        while True:
            n = self._steps_to_edge()
            t = self.last_us + (n * 1000000 - self.frac + hz - 1) // hz
            if t > to_us:
                break
            self.acc += n * self.inc - 100000000
            self.frac += hz * (t - self.last_us) - n * 1000000
            self.last_us = t
            self.edges += 1
            machine.gpio_edge(pin_no, blocked)
        # The step under way carries over, as machine.PWM.settle's acc does: a pump gated
        # on for less than a step per period (the ports' PWM floor) still moves.
        whole = self.frac + hz * (to_us - self.last_us)
        steps = whole // 1000000
        self.acc += steps * self.inc
        self.frac = whole - steps * 1000000
        self.last_us = to_us


class Slot:
    """The podlet slot as the world moves it (info, v, bus_error)."""

    def __init__(self):
        self.info = None
        self.v = 0
        self.bus_error = False


class Wiring:
    """The plant and the world around a real board: what boards/sim/board.py's SimBoard
    is to World, without being a board (the board is the real one)."""

    def __init__(self, board_name, board_py, scenario, trace_path, progress):
        machine.power_on()      # the first boot is a power-on: the RTC from the port's start
        self.name = board_name
        self.wiring = WIRING[board_name]
        self.pin = pin_table(board_py)
        self.plant = Plant(scenario["plant"], scenario["seed"])
        self.now_ms = 0
        self.commands = []
        self.radio = None
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
        self.encoder = Encoder(self)
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
        while now_us >= (self.now_ms + 100) * 1000:
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
        w = self.wiring
        uv = unit_divider_uv if w["unit"] else _nominal_uv
        machine.PIN_UV[self.pin["BOILER_NTC"]] = uv(
            p.boiler_raw, PARAMS["boiler_pullup_ohm"], w["boiler"], "boiler")
        machine.PIN_UV[self.pin["OUTLET_NTC"]] = uv(
            p.outlet_raw, PARAMS["outlet_pullup_ohm"], w["outlet"], "outlet")
        for no, uv in machine.PIN_UV.items():
            adc = machine.ADCS.get(no)
            if adc is not None:
                adc.uv = uv
        # Float closed (0) = water present, tilt closed = upright, button closed = held.
        self._level("WATER_FLOAT", p.water_low())
        self._level("TILT", p.tilted())
        self._level("BUTTON", 0 if self.held else 1)
        self._podlet_bus()

    def _level(self, name, v):
        no = self.pin[name]
        machine.EXT[no] = v
        pin = machine.PINS.get(no)
        if pin is not None:
            pin.ext = v

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
        """The port's boot: littlefs on the flash at the board's data folder (a blank
        flash is formatted, as the ports' _boot.py does)."""
        import realboard
        point = realboard.Board.data_dir
        try:
            vfs.umount(point)
        except OSError:
            pass
        # The ports' options: rp2 programs 256 bytes at a time (ports/rp2/modules/
        # _boot.py, progsize=256: each metadata commit pads to a page, so a directory's
        # block fills and is compacted, an erase, 8x sooner than littlefs's default);
        # the esp32 port takes the defaults (ports/esp32/modules/inisetup.py).
        kw = {} if machine.ESP32 else {"progsize": 256}
        try:
            fs = vfs.VfsLfs2(self.flash, **kw)
        except OSError:
            vfs.VfsLfs2.mkfs(self.flash, **kw)
            fs = vfs.VfsLfs2(self.flash, **kw)
        vfs.mount(fs, point)
        os.chdir(point)
        key_hex = self.world.scenario.get("mfg_public_hex")
        if key_hex and "mfg.pub" not in os.listdir(point):
            # The factory's step (steamer mfg provision-key), once per flash.
            with open(point + "/mfg.pub", "wb") as f:
                f.write(bytes.fromhex(key_hex))

    def make_board(self, board_mod):
        self.mount()
        self.stats["boots"] += 1
        if self.cut_writes:
            self.flash.cut_at_write(self.cut_writes.pop(0))
        portclock.EDGE_PINS.append(self.encoder)
        b = board_mod.make()
        self.board = b
        b.host_link = self
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


def run(scenario, trace_path, board_py, progress):
    import board as board_mod
    name = board_mod.Board.name
    if WIRING[name]["port"] != machine.PORT:
        raise SystemExit("portrun: board %s runs on the %s port, not PORTSIM_PORT=%s"
                         % (name, WIRING[name]["port"], machine.PORT))
    time.set_port_epoch(2000 if machine.ESP32 else 1970)
    wiring = Wiring(name, board_py, scenario, trace_path, progress)
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


def _main():
    if "--no-run" in sys.argv:
        return      # imported for its helpers (tests)
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    with open(sys.argv[1]) as f:
        scenario = json.load(f)
    summary = run(scenario, sys.argv[2] or None, sys.argv[3], "--quiet" not in sys.argv)
    print(json.dumps(summary))


_main()
