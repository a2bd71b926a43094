"""Simulator traces (the real simulator's output) as device log records in the store."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from steamer.store import Store, TraceError, import_trace, trace_records

EPOCH_S = 1_795_000_000.0
ROOT = Path(__file__).resolve().parents[2]
STEAMER = Path(sys.executable).with_name("steamer")


def test_demo_trace_is_one_full_dose_session(tmp_path: Path, demo_trace: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        result = import_trace(store, "sim", demo_trace, start_epoch_s=EPOCH_S)
        assert not result.already_imported and result.first_seq == 1
        assert store.last_seq("sim") == result.last_seq == result.records
        (s,) = store.sessions()
        assert result.session_ids == [s.id]
        assert (s.end_reason, s.dose_ul) == ("max_session", 2500.0)
        assert (s.podlet, s.podlet_type, s.profile, s.profile_version, s.target_c) == \
            ("0000c0ffee01", 3, "vitamin-c", 1, 45.0)
        # The session starts at t = 3 s (demo.json) and the clock is EPOCH_S at t = 0.
        assert s.start_epoch_s == EPOCH_S + 3.0
        assert s.end_epoch_s == pytest.approx(EPOCH_S + s.duration_ms / 1000 + 3.0)
        samples = store.samples(s.id)
        assert len(samples) == s.samples
        # A sample a second, from the start to the last step of the session.
        steps = [b.t_ms - a.t_ms for a, b in zip(samples, samples[1:])]
        assert set(steps[:-1]) == {1000} and 0 < steps[-1] <= 1000
        # The dose is the encoder's count (fw.session.dose_step): the last sample is the
        # step before the one whose count reached the limit, within a step's 0.5 µl of it.
        assert samples[0].t_ms == 0 and 2499.5 <= samples[-1].dose_ul <= 2500.0
        assert s.duration_ms - samples[-1].t_ms <= 1000
        steaming = [p for p in samples if p.dose_ul > 0]
        assert all(abs(p.outlet_c - 45.0) < 1.5 for p in steaming)
        # The other decisions are kept raw, under their own kinds.
        kinds = [r["kind"] for r in store.records("sim")]
        assert kinds[:3] == ["trace_imported", "boot", "profile_installed"]
        assert kinds.count("session_started") == kinds.count("session_ended") == 1


def test_a_trace_is_imported_once_per_device(tmp_path: Path, demo_trace: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        first = import_trace(store, "sim", demo_trace, start_epoch_s=EPOCH_S)
        again = import_trace(store, "sim", demo_trace, start_epoch_s=EPOCH_S)
        assert again.already_imported and again.records == 0
        other = import_trace(store, "bench", demo_trace, start_epoch_s=EPOCH_S)
        assert other.records == first.records
        # A different trace for the same device is numbered after what it has.
        shorter = tmp_path / "short.jsonl"
        lines = demo_trace.read_text().splitlines()
        shorter.write_text("\n".join(lines[:4000]) + "\n")
        more = import_trace(store, "sim", shorter, start_epoch_s=EPOCH_S + 3600)
        assert more.first_seq == first.last_seq + 1
        ends = [s.end_reason for s in store.sessions("sim")]
        assert ends == ["max_session", None]  # the cut-off trace's session is still open


def test_default_clock_puts_the_trace_end_at_the_file_time(tmp_path: Path,
                                                           demo_trace: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        import_trace(store, "sim", demo_trace)
        (s,) = store.sessions()
        last_t_ms = json.loads(demo_trace.read_text().splitlines()[-1])["t_ms"]
        assert s.start_epoch_s == pytest.approx(
            demo_trace.stat().st_mtime - last_t_ms / 1000 + 3.0, abs=0.01)


@pytest.mark.parametrize("lines, line, match", [
    (['{"t_ms": 0, "event": "boot"}', '{"t_ms": 100, "state": "idle"'], 2, "not valid JSON"),
    (['{"t_ms": 0, "event": "boot"}', '[1, 2]'], 2, "not a trace record"),
    (['{"t_ms": 0, "state": "idle", "fw": {}}', '{"t_ms": 100, "fw": {}}'], 2, "state and fw"),
    (['{"t_ms": 0, "state": "idle", "fw": {}}',
      '{"t_ms": 100, "event": "session_started", "podlet": "x", "podlet_type": 3}'],
     2, "target_c is required"),
    (['{"t_ms": 0, "event": "session_started", "podlet": "x", "podlet_type": 3, "target_c": 45}',
      '{"t_ms": 0, "state": "preheat", "fw": {"session_ul": "lots"}}'], 2, "fw.*session_ul"),
    (['{"t_ms": 100, "state": "idle", "fw": {}}', '{"t_ms": 50, "state": "idle", "fw": {}}'],
     2, "time never goes back"),
])
def test_a_bad_trace_names_the_line_and_changes_nothing(tmp_path: Path, lines: list[str],
                                                        line: int, match: str) -> None:
    trace = tmp_path / "bad.jsonl"
    trace.write_text("\n".join(lines) + "\n")
    with Store.open(tmp_path / "s.db") as store:
        with pytest.raises(TraceError, match=f"bad.jsonl line {line}: .*{match}"):
            import_trace(store, "sim", trace, start_epoch_s=EPOCH_S)
        assert store.devices() == [] and store.last_seq("sim") is None


def test_not_a_trace_at_all(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        trace_records(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(TraceError, match="no step records"):
        trace_records(empty)


def power_cut_trace(tmp_path: Path) -> Path:
    """The simulator's trace of the demo session with the power cut at t = 200 s for 5 s:
    its steps while off are {"state": "off", "fw": null}, and the firmware boots again."""
    scenario = json.loads((ROOT / "scenarios" / "demo.json").read_text())
    scenario["duration_s"] = 260
    scenario["events"].append({"t_s": 200.0, "do": "power_cut", "off_s": 5.0})
    (tmp_path / "cut.json").write_text(json.dumps(scenario))
    trace = tmp_path / "cut.jsonl"
    subprocess.run([str(STEAMER), "sim", "run", str(tmp_path / "cut.json"), "--trace",
                    str(trace), "--quiet"], check=True, capture_output=True, timeout=120)
    return trace


def test_a_power_cut_is_imported_and_ends_the_session_it_cut(tmp_path: Path) -> None:
    trace = power_cut_trace(tmp_path)
    assert '"state": "off", "fw": null' in trace.read_text()
    with Store.open(tmp_path / "s.db") as store:
        import_trace(store, "sim", trace, start_epoch_s=EPOCH_S)
        (s,) = store.sessions()
        # The firmware boots cold after the cut and ends the session it finds cut short
        # after its boot record, with the dose its ledger counted.
        assert s.end_reason == "power_loss"
        records = store.records("sim")
        boot = next(r for r in records if r["kind"] == "boot" and r["seq"] > s.start_seq)
        end = next(r for r in records if r["kind"] == "session_ended")
        assert boot["seq"] < end["seq"] == s.end_seq
        assert s.dose_ul == end["payload"]["session_ul"] > 0
        samples = store.samples(s.id)
        steps = [json.loads(line) for line in trace.read_text().splitlines()]
        on = [r["t_ms"] for r in steps[:next(i for i, r in enumerate(steps)
                                             if r.get("state") == "off")] if "fw" in r]
        assert samples[-1].t_ms == on[-1] - 3_000      # its last step before the cut
        assert s.duration_ms == samples[-1].t_ms
