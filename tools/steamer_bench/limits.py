"""`steamer dev bench --parts limits`: the dosing limits against 100,000 random sequences
of events, the state machine of the tests (steamer_harness.limits_machine) run on the
firmware on micropython, in parallel processes (one interpreter each).

    from steamer_tools import bench_limits; print(bench_limits.run(10_000))

Each process runs the machine in rounds of ROUND sequences (a hypothesis run each, with
a fresh seed); a round that finds a violation counts one, and its shrunk sequence is
reported. Figures: sequences run (hypothesis's examples, each a new device), violations,
steps (operations on the device), sessions, wall time, sequences per second.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

SEQUENCES = 100_000
WORKERS = 2
ROUND = 2_000


def _say(text: str) -> None:
    sys.stderr.write(f"bench: limits: {text}\n")
    sys.stderr.flush()


def _work(index: int, sequences: int) -> dict:
    """One process: its share of the sequences, on one micropython driver."""
    from steamer_harness import limits_machine

    out = {"sequences": 0, "steps": 0, "sessions": 0, "cuts": 0, "dosed_ul": 0.0,
           "violations": [], "errors": []}
    dev = limits_machine.Device()
    t0 = time.perf_counter()
    left = sequences
    try:
        while left > 0:
            n = min(ROUND, left)
            left -= n
            limits_machine.Limits.stats = limits_machine.Stats()
            try:
                limits_machine.run(n, dev)
            except limits_machine.DriverError as e:
                out["errors"].append(str(e)[-4000:])
                dev.close()
                dev = limits_machine.Device()
            except Exception as e:  # a violation, hypothesis-shrunk
                notes = "\n".join(getattr(e, "__notes__", []))
                out["violations"].append(f"{type(e).__name__}: {e}\n{notes}"[-4000:])
            stats = limits_machine.Limits.stats
            out["sequences"] += stats.sequences
            out["steps"] += stats.steps
            out["sessions"] += stats.sessions
            out["cuts"] += stats.cuts
            out["dosed_ul"] += stats.doses_ul
            _say(f"process {index}: {out['sequences']} sequences, "
                 f"{len(out['violations'])} violations, {time.perf_counter() - t0:.0f} s")
    finally:
        dev.close()
    out["wall_s"] = time.perf_counter() - t0
    return out


def run(sequences: int = SEQUENCES, workers: int = WORKERS) -> dict:
    shares = [sequences // workers + (1 if i < sequences % workers else 0)
              for i in range(workers)]
    _say(f"{sequences} sequences in {workers} processes")
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        results = list(pool.map(_work, range(workers), shares))
    except BaseException:
        # Ctrl-C: the workers would finish their whole share first (many minutes).
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    wall = time.perf_counter() - t0
    total = {k: sum(r[k] for r in results) for k in ("sequences", "steps", "sessions", "cuts")}
    violations = [v for r in results for v in r["violations"]]
    errors = [e for r in results for e in r["errors"]]
    return {
        "sequences_asked": sequences,
        "sequences_run": total["sequences"],
        "violations": len(violations),
        "driver_errors": len(errors),
        "steps": total["steps"],
        "sessions_started": total["sessions"],
        "power_cuts": total["cuts"],
        "dosed_ml": round(sum(r["dosed_ul"] for r in results) / 1000, 1),
        "processes": workers,
        "wall_s": round(wall, 1),
        "process_wall_s": [round(r["wall_s"], 1) for r in results],
        "sequences_per_s": round(total["sequences"] / wall, 1),
        "first_violations": violations[:3],
        "first_errors": errors[:3],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else SEQUENCES), indent=1))
