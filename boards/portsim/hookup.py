"""How a real board is hooked up on the port models, for whatever drives it: the NTC
dividers per board, the pump head's encoder on the step PWM, and the port's boot (its
littlefs on the timed flash) and the factory's ADC calibration (calibrate).
portrun.py wires them to the sim's plant; tools/steamer_harness/limits_mp.py to the
limits driver's world, which heats at once."""
import os
import vfs

import machine
import portclock
from plant import PARAMS
from unit import divider_uv, unit_divider_uv

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


def ntc_uv(board_name, name, raw):
    """The volts (uV) on the ADC pin of the board's `name` NTC ("boiler", "outlet") when
    the plant's counts for it are raw."""
    w = WIRING[board_name]
    uv = unit_divider_uv if w["unit"] else _nominal_uv
    return uv(raw, PARAMS[name + "_pullup_ohm"], w[name], name)


def set_uv(pin_no, uv):
    """The voltage on an ADC pin, to its ADC when one was made."""
    machine.PIN_UV[pin_no] = uv
    adc = machine.ADCS.get(pin_no)
    if adc is not None:
        adc.uv = uv


def set_level(pin_no, v):
    """The level an external switch puts on an input pin."""
    machine.EXT[pin_no] = v
    pin = machine.PINS.get(pin_no)
    if pin is not None:
        pin.ext = v


class Encoder:
    """The pump head's encoder: an edge per 100 nl the pump really moves, at the time it
    moves it, from the step PWM's rate (2 nl per step, times the pump's calibration);
    none while the pump stalls or is unpowered, the pump's fastest while it runs away.
    It is an edge source of portclock (next_edge, edges_until) feeding the board's
    encoder pin (machine.gpio_edge: its IRQ, or the rp2 PWM slice counting it).

    pins: the board's pin table (PUMP_STEP, PUMP_ENCODER); pump: what moves, with
    pump_cal (its calibration, 1.0 = as told), powered and faults ("pump_stall",
    "pump_runaway"): the sim's Plant, or a stand-in with those three."""

    def __init__(self, pins, pump):
        self.pins = pins
        self.pump = pump
        self.acc = 0                    # nl * 1e6 toward the next edge
        self.last_us = portclock.NOW[0]
        self.frac = 0                   # Hz * us toward the step under way (as machine.PWM)
        self.inc = int(2000000 * pump.pump_cal)     # nl * 1e6 per step
        self.edges = 0

    def _hz(self):
        p = self.pump
        if not p.powered or "pump_stall" in p.faults:
            return 0
        if "pump_runaway" in p.faults:
            return PARAMS["pump_max_nl_s"] // 2
        pwm = machine.PWMS.get(self.pins["PUMP_STEP"])
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
        pin_no = self.pins["PUMP_ENCODER"]
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


def mount(flash, point, key_hex=None):
    """The port's boot: littlefs on the flash at the board's data folder `point` (a blank
    flash is formatted, as the ports' _boot.py does), the current folder; with key_hex,
    the factory's step (steamer mfg provision-key) once per flash: mfg.pub written."""
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
        fs = vfs.VfsLfs2(flash, **kw)
    except OSError:
        vfs.VfsLfs2.mkfs(flash, **kw)
        fs = vfs.VfsLfs2(flash, **kw)
    vfs.mount(fs, point)
    os.chdir(point)
    if key_hex and "mfg.pub" not in os.listdir(point):
        with open(point + "/mfg.pub", "wb") as f:
            f.write(bytes.fromhex(key_hex))


# The factory's calibration plug (steamer_mfg.adccal's defaults, 0.1 % resistors in
# place of the NTCs) and the reads it averages.
PLUG_OHM = {"boiler": 680, "outlet": 4700}
CAL_READS = 16


def calibrate(board_name, board_mod, pins, point):
    """The factory's ADC calibration of this unit (`steamer mfg adc-cal`, as
    boards/common/adccal.py's measure, fit and save run on the board): the plug's
    resistors on the NTC inputs, both channels read through the board's own
    ntc_channels(), the record written under `point` (mounted). The caller puts the
    plant's volts back before the firmware reads them. Only a board whose ADC measures
    volts has one (the C3); the Pico W's is ratiometric: False, nothing written."""
    if not WIRING[board_name]["unit"]:
        return False
    import adccal
    for ch, pin in (("boiler", "BOILER_NTC"), ("outlet", "OUTLET_NTC")):
        pull = PARAMS[ch + "_pullup_ohm"]
        set_uv(pins[pin], ntc_uv(board_name, ch, 4095 * PLUG_OHM[ch] / (PLUG_OHM[ch] + pull)))
    ntcs = board_mod.ntc_channels()
    got = adccal.measure(ntcs, CAL_READS, say=lambda _line: None)
    gains = {ch: adccal.fit(ntcs[ch], got[ch][0], CAL_READS, PLUG_OHM[ch])[1]
             for ch in adccal.CHANNELS}
    adccal.save(point, gains, PLUG_OHM)
    return True
