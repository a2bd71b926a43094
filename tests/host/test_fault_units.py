"""A fault record's value and limit carry their unit (issue 14 item 8): on main the fault
list called them value_mc/limit_mc whatever they were (ADC counts, steps, nanolitres),
and `steamer status` printed `boiler_ntc_open (4.095 C against a limit of 4.07 C)` for
4095 counts against 4070. Now the fault list has a `unit` (podproto.names.UNIT_NAMES,
FAULT_UNITS by code), and the screen says it."""
from __future__ import annotations

import re

from podproto import codec
from podproto.names import FAULT_NAMES, FAULT_UNITS, UNIT_NAMES
from steamer.session import fault_amount_text
from steamer_dev.paths import DEVICE


def _limit_unit(limit_src: str) -> str:
    """The unit fw.safety's limit argument is in, from its name."""
    if "RAW_" in limit_src:
        return "counts"
    if limit_src.upper().endswith("_MC") or "_MC if" in limit_src:
        return "mc"
    if limit_src.endswith("_STEPS"):
        return "steps"
    if "nl" in limit_src or limit_src == "limit":
        return "nl"
    raise AssertionError(f"no unit known for {limit_src!r}")


def test_every_fault_code_has_the_unit_its_check_measures_in():
    assert len(FAULT_UNITS) == len(FAULT_NAMES)
    src = (DEVICE / "fw" / "safety.py").read_text()
    calls = re.findall(r"_found\(codes\.F_(\w+), codes\.S_\w+,\s*([^,]+),\s*([^,]+),\s*([^)]+?(?:\))?)\)",
                       src.replace("\n", " "))
    checked = set()
    for name, _raw, _value, limit in calls:
        if name == "NONE":
            continue
        limit = re.sub(r"\s+", " ", limit.strip())
        code = FAULT_NAMES.index(name.lower())
        assert UNIT_NAMES[FAULT_UNITS[code]] == _limit_unit(limit), (name, limit)
        checked.add(name.lower())
    # Every fault fw.safety can find is checked here (service_error comes from fw.main).
    assert checked == set(FAULT_NAMES[1:]) - {"service_error"}


def test_the_fault_list_carries_the_unit_on_the_wire():
    fault = {"code": FAULT_NAMES.index("boiler_ntc_open"), "sensor": 1, "raw": 4095,
             "value": 4095, "limit": 4070, "unit": UNIT_NAMES.index("counts"),
             "uptime_s": 12}
    back = codec.decode(codec.encode({"type": "fault_list", "faults": [fault]}))
    assert back["faults"][0]["unit"] == UNIT_NAMES.index("counts")
    assert back["faults"][0]["value"] == 4095


def test_status_says_each_amount_in_its_unit():
    assert fault_amount_text(4095, UNIT_NAMES.index("counts")) == "4095 ADC counts"
    assert fault_amount_text(130500, UNIT_NAMES.index("mc")) == "130.5 °C"
    assert fault_amount_text(40, UNIT_NAMES.index("steps")) == "40 steps (4 s)"
    assert fault_amount_text(600, UNIT_NAMES.index("nl")) == "600 nl"
