"""A scenario run through `steamer_sim.driver.run_scenario` with its trace read back, for
the simulator tests: the one way they run a scenario and split its trace."""
from __future__ import annotations

import json
from pathlib import Path

from steamer_sim.driver import run_scenario


def run_traced(tmp_path: Path, scen: dict) -> tuple[dict, list[dict], list[dict]]:
    """(summary, steps, events) of `scen` run with a trace in tmp_path; a run that
    allocated in a locked step or crashed fails here."""
    trace = tmp_path / "trace.jsonl"
    summary = run_scenario(scen, str(trace))
    steps: list[dict] = []
    events: list[dict] = []
    for line in trace.read_text().splitlines():
        rec = json.loads(line)
        (events if "event" in rec else steps).append(rec)
    assert summary["loop"]["alloc_errors"] == 0
    assert summary["loop"]["crashes"] == 0
    return summary, steps, events
