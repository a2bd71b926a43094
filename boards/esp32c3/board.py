"""The ESP32-C3 board: the board contract (device/BOARD.md) from machine objects.

What is particular to this board lives here: the pin table (here and nowhere else), the
ADC's attenuation and how its volts become the NTC tables' counts, where the cut-off's mark survives a reset, and the reset causes. The
rest is boards/common/realboard.py. README.md next to this file has the wiring and the
reasons behind each choice.
"""
import sys

import esp32
import machine
from machine import ADC, RTC, Pin
from micropython import const

import realboard
from fw import codes

# ---- pins (ESP32-C3; GPIO18/19 are USB, GPIO20/21 stay UART0) ---------------------------
_PIN_BOILER_NTC = const(0)      # ADC1_CH0
_PIN_OUTLET_NTC = const(1)      # ADC1_CH1
_PIN_PODLET_1W = const(2)       # strapping pin: the bus's 4k7 pull-up holds it high at reset
_PIN_PUMP_ENCODER = const(3)
_PIN_WATER_FLOAT = const(4)
_PIN_TILT = const(5)
_PIN_HEATER_SSR = const(6)
_PIN_HEATER_KEEPALIVE = const(7)
_PIN_CUTOFF_RELAY = const(8)    # strapping pin: only matters with GPIO9 low (download mode)
_PIN_BUTTON = const(9)          # the module's BOOT button doubles as the device's button
_PIN_PUMP_STEP = const(10)

# The LEDC's slowest at 80 MHz: ports/esp32/machine_pwm.c set_freq -> ledc_timer_config
# fails under 80 MHz / (8192 * 1024) = 9.54 Hz (OSError); slower rates are gated.
_PUMP_STEP_HZ_MIN = const(10)

# The pump's keep-alive: hardware timer 0 (group 0). The port's virtual timer (-1) counts
# in FreeRTOS ticks (10 ms) and makes a new FreeRTOS timer at every init.
_PUMP_TIMER_ID = const(0)

# Written to RTC user memory when the cut-off opens: that memory survives watchdog and
# soft resets (RTC_NOINIT) and is cleared by power-on, exactly the cut-off's lifetime.
_CUTOFF_MARK = b"cutoff-open"


# The boiler's divider: the NTC from 3.3 V to GPIO0, 560 ohm to ground (README: at 11 dB
# the ADC reads ~0..2.5 V; the 1 k pull-up divider read 3.0 V at 22 C); its table is the
# 1 k pull-up one. The outlet's 10 k pull-up divider stays under 2.35 V above ~5 C.
_BOILER_LOW_OHM = const(560)
_BOILER_TABLE_PULLUP_OHM = const(1000)
_OUTLET_PULLUP_OHM = const(10000)


def _adc(pin_no):
    # 11 dB: the widest range, ~0..2.5 V; read_uv() is the eFuse-calibrated reading.
    return ADC(Pin(pin_no), atten=ADC.ATTN_11DB)


class _RtcMark:
    def __init__(self, rtc):
        self._memory = rtc.memory

    def is_set(self):
        return self._memory() == _CUTOFF_MARK

    def set(self):
        # From the control step: a copy of a constant into RTC memory, no allocation.
        self._memory(_CUTOFF_MARK)


class Board(realboard.Board):
    name = "esp32c3"
    # NimBLE refuses a notification it has no mbufs for (ENOMEM, nothing lost): fw.ble's
    # pace may probe past its assumed PDUs per event (the Pico W's BTstack queues on the
    # heap instead, so its pace stays at the assumption).
    BLE_REFUSES_WHEN_FULL = True

    def flash_device(self):
        # ports/esp32/modules/flashbdev.py: the "vfs" data partition, littlefs with the
        # default options (inisetup.py), so LFS_KW stays empty.
        return esp32.Partition.find(esp32.Partition.TYPE_DATA, label="vfs")[0]

    def load_records(self):
        # This unit's ADC calibration (adccal.py, written by `steamer mfg adc-cal`). The
        # module is let go after: only the factory needs it again, and the heap is short.
        import adccal
        problem = adccal.apply({"boiler": self.boiler_ntc, "outlet": self.outlet_ntc},
                               self.data_dir)
        del sys.modules["adccal"]
        return problem

    def __init__(self):
        rtc = RTC()
        ntcs = ntc_channels()
        self.boiler_ntc = ntcs["boiler"]
        self.outlet_ntc = ntcs["outlet"]
        self.heater = realboard.Heater(_PIN_HEATER_SSR, _PIN_HEATER_KEEPALIVE)
        self.heater_cutoff = realboard.Cutoff(_PIN_CUTOFF_RELAY, _RtcMark(rtc))
        self.pump = realboard.Pump(_PIN_PUMP_STEP, _PIN_PUMP_ENCODER, _PUMP_TIMER_ID,
                                   _PUMP_STEP_HZ_MIN)
        # Float closed = water present; tilt closed = upright; button closed = held.
        self.water_low = realboard.Switch(_PIN_WATER_FLOAT, 0)
        self.tilt = realboard.Switch(_PIN_TILT, 0)
        self.button = realboard.Switch(_PIN_BUTTON, 1)
        self.podlet = realboard.PodletReader(_PIN_PODLET_1W)
        realboard.Board.__init__(self, _reset_cause(), rtc)


def ntc_channels():
    """The NTC dividers as the board reads them, uncalibrated ({"boiler", "outlet"}:
    realboard.NtcUv): Board's, and the factory's calibration's (`steamer mfg adc-cal`
    in the maintenance boot, adccal.py), which builds nothing else."""
    return {"boiler": realboard.NtcUv(_adc(_PIN_BOILER_NTC), _BOILER_LOW_OHM,
                                      _BOILER_TABLE_PULLUP_OHM),
            "outlet": realboard.NtcUv(_adc(_PIN_OUTLET_NTC), 0, _OUTLET_PULLUP_OHM)}


def _reset_cause():
    cause = machine.reset_cause()
    if cause == machine.WDT_RESET:
        return codes.RESET_WDT
    if cause == machine.SOFT_RESET:
        return codes.RESET_SOFT
    # Power-on, brown-out and the EN pin all clear RAM and the RTC memory alike.
    return codes.RESET_POWER


def maintenance_requested():
    """The maintenance gesture on this board's button (realboard.maintenance_requested)."""
    return realboard.maintenance_requested(_PIN_BUTTON, 1)


def make():
    return Board()
