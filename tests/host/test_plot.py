"""plot_session draws a readable, non-blank PNG of a real simulated session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from steamer.plot import _mmss, _tick_s, plot_session, title
from steamer.store import Store, StoreError, import_trace


def colours(png: Path) -> tuple[tuple[int, ...], int, float]:
    """(height, width), distinct colours (to 1/16 of each channel), non-white fraction."""
    img = imread(str(png))[:, :, :3]
    q = (img * 15).round().astype(int).reshape(-1, 3)
    distinct = len({tuple(c) for c in q[:: 7]})
    non_white = float(np.mean(img.min(axis=2) < 0.9))
    return img.shape[:2], distinct, non_white


def test_plot_of_the_demo_session(tmp_path: Path, demo_trace: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        (sid,) = import_trace(store, "sim", demo_trace, start_epoch_s=1_795_000_000).session_ids
        out = tmp_path / "session.png"
        plot_session(store, sid, out)
        t = title(store.session(sid))
    assert "vitamin-c v1" in t and "0000c0ffee01" in t and "2500 µl" in t
    assert "full dose delivered" in t and "2026-11-1" in t
    shape, distinct, non_white = colours(out)
    assert shape == (800, 1000)
    assert distinct >= 6           # lines in red, blue, orange, green over white and grey
    assert 0.03 < non_white < 0.6  # ink, but not a filled block


def test_plot_of_a_session_without_samples(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.ingest("d", [{"seq": 1, "kind": "session_started", "payload": {
            "podlet": "0000c0ffee01", "podlet_type": 3, "target_c": 45.0}}])
        out = tmp_path / "empty.png"
        plot_session(store, 1, out)
        assert "date unknown" in title(store.session(1))
        assert "still running" in title(store.session(1))
        with pytest.raises(StoreError, match="no session 2"):
            plot_session(store, 2, tmp_path / "none.png")
    assert colours(out)[0] == (800, 1000)
    assert not (tmp_path / "none.png").exists()


def test_time_axis() -> None:
    assert [_mmss(s) for s in (0, 59.6, 61, 733.1, -5)] == ["0:00", "1:00", "1:01", "12:13", "-0:05"]
    assert _tick_s(733) == 120 and _tick_s(45) == 5 and _tick_s(0) == 1
