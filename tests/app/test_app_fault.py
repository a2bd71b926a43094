"""The app in a real browser when things go wrong or change: a session stopped with the
big Stop button, the link dropping mid-session and the page coming back to the same
screen by itself, a signed profile pushed from a file, `steamer pair` for the steamer
the app holds going through the app (which pairs and holds it again), and a fault (the
steamer tipped over) shown in words with what to do."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from steamer_harness import app as harness
from steamer_harness.ble import TEST_PODLET_TYPE, signed_test_profile

NAME = "app-b"


@pytest.fixture(scope="module")
def ui(air, tmp, browser):
    # A long session: it still runs after the link drop has come back.
    served = harness.serve_for_app(air, tmp, NAME, max_session_ul=2500)
    app = harness.start_app(air, tmp)
    page = browser.new_page(viewport=harness.PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield air, served, app, page, errors
    finally:
        page.close()
        app.stop()
        served.stop()


def test_stop_link_drop_profile_push_and_fault(ui, tmp, shoot):
    air, served, app, page, errors = ui
    from playwright.sync_api import expect
    page.goto(app.url + "#nearby")
    page.get_by_role("button", name=f"Pair with {NAME}").click(timeout=15000)
    harness.press(air, NAME)
    expect(page.locator("#st-state")).to_have_text("Ready for a session", timeout=30000)

    page.get_by_role("button", name="Start").click()
    expect(page.locator("#st-dose-text")).to_contain_text("min left", timeout=20000)

    # The link drops mid-session: the page says so and stays; the app brings it back.
    assert air.call(air.drop, served.addr) == 1
    expect(page.locator("#link")).to_contain_text(
        re.compile(f"Connected to {NAME} \\(the link dropped at .* and came back\\)"),
        timeout=20000)
    assert page.url.endswith("#steamer")
    expect(page.locator("#st-state")).to_have_text("Steaming", timeout=5000)

    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#st-state")).to_have_text(
        re.compile("Cooling down|Ready for a session"), timeout=10000)
    page.get_by_role("link", name="History").click()
    expect(page.locator("#hist-table tbody tr").first).to_contain_text("stopped",
                                                                       timeout=15000)

    # A signed profile pushed from a file, then listed.
    blob = tmp / "calm-v3.bin"
    blob.write_bytes(signed_test_profile(3, "calm"))
    page.get_by_role("link", name="Profiles").click()
    page.get_by_label("Signed profile file (.bin)").set_input_files(str(blob))
    page.get_by_role("button", name="Install on the steamer").click()
    expect(page.locator("#prof-result")).to_have_text(
        f"Installed calm v3 (podlet type {TEST_PODLET_TYPE}).", timeout=20000)
    expect(page.locator("#prof-table tbody")).to_contain_text("calm")
    # Not a signed profile: refused in words.
    bad = tmp / "notes.bin"
    bad.write_bytes(b'{"name": "calm"}')
    page.get_by_label("Signed profile file (.bin)").set_input_files(str(bad))
    page.get_by_role("button", name="Install on the steamer").click()
    expect(page.locator("#prof-result")).to_contain_text("unsigned profile", timeout=5000)

    # Pairing again through the app: it lets go of the steamer, pairs while the button
    # is held, and holds it again.
    proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "pair", NAME, "--sim",
                             "--timeout", "30"], env=app.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stderr is not None
    assert proc.stderr.readline().endswith("going through it\n")
    assert proc.stderr.readline().startswith(f"Press and hold {NAME}'s button")
    harness.press(air, NAME)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith(f"paired with {NAME} (") and "through the steamer app" in out, out
    assert "waiting for the pairing window" in err, err
    expect(page.locator("#link")).to_have_text(f"Connected to {NAME}", timeout=15000)
    p = app.steamer("status", NAME, "--sim", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["device"] == NAME, p.stderr

    # A fault, in words, with what to do.
    page.get_by_role("link", name="The steamer").click()
    harness.inject(air, NAME, {"do": "fault", "fault": "tip_over"})
    fault = page.get_by_role("alert").filter(has_text="tipped over")
    expect(fault).to_be_visible(timeout=15000)
    expect(fault).to_contain_text("What to do: stand it upright, let it cool, press the button.")
    expect(page.locator("#st-state")).to_have_text("Fault")
    assert page.is_disabled("#st-start")
    assert shoot(page, "fault") == []
    assert errors == []
