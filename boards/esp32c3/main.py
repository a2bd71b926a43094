"""Runs the steamer firmware on this board (MicroPython runs main.py at boot)."""
import board
from fw import main

main.run(board.make())
