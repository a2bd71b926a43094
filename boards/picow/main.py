"""Runs the steamer firmware on this board (MicroPython runs main.py at boot), unless the
maintenance gesture is made at power-on (README.md: the button held from 0.5 s to 1.5 s
after power-on): then nothing starts and the REPL is free for mpremote."""
import board
from fw import main

# What this boot did, for the host tools (steamer_mfg.usb.board_mode reads it at the REPL,
# which shares main.py's globals): "running" once the firmware, and its watchdog that no
# interruption stops, may have started; mpremote must then wait for a maintenance boot.
STEAMER_MODE = "starting"
if board.maintenance_requested():
    STEAMER_MODE = "maintenance"
    print("steamer: maintenance boot: no watchdog, heater or pump; the REPL is yours")
else:
    STEAMER_MODE = "running"
    main.run(board.make())
