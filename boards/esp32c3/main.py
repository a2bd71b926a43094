"""Runs the steamer firmware on this board (MicroPython runs main.py at boot), unless the
maintenance gesture is made at power-on (README.md: the button held from 0.5 s to 1.5 s
after power-on): then nothing starts and the REPL is free for mpremote."""
import board
from fw import main

if board.maintenance_requested():
    print("steamer: maintenance boot: no watchdog, heater or pump; the REPL is yours")
else:
    main.run(board.make())
