"""A real board's pin table as the port runs read it: the `_PIN_X = const(N)` lines of
its board.py (the table lives there and nowhere else; see boards/esp32c3/board.py)."""


def pin_table(path):
    """{"X": N} for each `_PIN_X = const(N)` line of the board's source at path."""
    table = {}
    with open(path) as f:
        for line in f:
            if line.startswith("_PIN_") and "const(" in line:
                table[line.split("=")[0].strip()[5:]] = int(line.split("const(")[1].split(")")[0])
    return table
