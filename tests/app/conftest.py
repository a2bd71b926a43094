"""Fixtures for the app's tests: a simulated air in this process, one steamer served on
it per module (`steamer sim serve`, the real firmware), `steamer app --sim` as its own
process, and a page in Debian's Chromium under Playwright. The drivers are
steamer_harness.app's, which the benchmark runs too."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from steamer_harness import app as harness
from steamer_sim.air import Air, LinkParams

SHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"


@pytest.fixture(scope="module")
def air() -> Air:
    a = Air(LinkParams())
    a.start_thread()
    return a


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with harness.browser() as b:
        yield b


@pytest.fixture(scope="module")
def shoot():
    return _shoot


def _shoot(page, name: str) -> list[dict]:
    """Screenshots of the screen as it is at phone and desktop sizes (out/screenshots/),
    and axe-core's serious and critical violations at each."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    found = []
    for size, viewport in (("phone", harness.PHONE), ("desktop", harness.DESKTOP)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(150)      # the charts follow the new width
        page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
        found += [dict(v, size=size) for v in harness.axe_violations(page)]
    page.set_viewport_size(harness.PHONE)
    return found
