"""Messages a new user meets, each saying the right thing: a device name's suggestion,
an empty history's next step, verify's reason, a key file that is no key, a podlet
image already expired, and the simulator's units."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steamer_sim.air import ENV, Air

STEAMER = [sys.executable, "-m", "steamer.cli.main"]


def steamer(*args: str, env: dict | None = None, code: int = 0,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([*STEAMER, *args], env=env, text=True, capture_output=True,
                       timeout=90, stdin=subprocess.DEVNULL, cwd=cwd)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, f"exit {p.returncode}: {p.stdout}{p.stderr}"
    return p


def test_a_mistyped_device_name_gets_a_suggestion(tmp_path: Path) -> None:
    from steamer_harness.ble import serve
    air = Air()
    air.start_thread()
    s = serve(air, tmp_path, "kitchen", speed=4)
    try:
        env = dict(os.environ, **{ENV: air.address}, STEAMER_KEYS=str(tmp_path / "k.json"))
        p = steamer("status", "kitchn", "--sim", "--scan-timeout", "1", env=env, code=1)
        assert p.stderr.strip() == ("steamer status: unknown device kitchn: not found in a "
                                    "1 s scan (did you mean 'kitchen'?)"), p.stderr
    finally:
        s.stop()


def test_an_empty_history_points_to_sync(tmp_path: Path) -> None:
    from steamer.store import Store
    db = tmp_path / "h.db"
    Store.open(db, create=True).close()
    p = steamer("sessions", "--db", str(db))
    assert "steamer sync DEVICE" in p.stdout and "import-trace" not in p.stdout, p.stdout


@pytest.fixture
def keyed(tmp_path: Path) -> Path:
    steamer("mfg", "keygen", "--out", str(tmp_path / "k.pem"))
    (tmp_path / "p.json").write_text(json.dumps(
        {"podlet_type": 3, "version": 1, "name": "calm", "outlet_target_c": 40.0,
         "session_s": 60, "dose_rate_ul_min": 300, "max_session_ul": 2500,
         "max_day_ul": 50000, "min_interval_s": 0}))
    return tmp_path


def test_verify_names_what_failed_once(keyed: Path) -> None:
    steamer("mfg", "sign-profile", str(keyed / "p.json"), "--key", str(keyed / "k.pem"),
            "-o", str(keyed / "p.bin"))
    data = (keyed / "p.bin").read_bytes()
    (keyed / "cut.bin").write_bytes(data[:-3])
    p = steamer("mfg", "verify", str(keyed / "cut.bin"), "--key", str(keyed / "k.pem"), code=1)
    assert p.stdout.startswith(f"FAIL {keyed / 'cut.bin'}: signed profile: bad signature"), p.stdout
    assert "signed profile: signed profile" not in p.stdout


def test_a_readable_file_that_is_no_key_is_not_called_an_exposed_key(keyed: Path) -> None:
    (keyed / "p.json").chmod(0o644)
    p = steamer("mfg", "sign-profile", str(keyed / "p.json"), "--key", str(keyed / "p.json"),
                code=2)
    assert p.stderr.strip() == (f"steamer mfg sign-profile: key file '{keyed / 'p.json'}': "
                                "not a PEM private key (want an Ed25519 key as `steamer mfg "
                                "keygen` writes it)"), p.stderr
    # A real key left readable still gets the warning.
    (keyed / "k.pem").chmod(0o644)
    p = steamer("mfg", "sign-profile", str(keyed / "p.json"), "--key", str(keyed / "k.pem"),
                code=2)
    assert "consider the key exposed" in p.stderr


def test_an_expired_podlet_image_is_made_with_a_warning(keyed: Path) -> None:
    common = ["mfg", "podlet-image", "--serial", "0000c0ffee07", "--type", "3",
              "--capacity-ul", "100", "--lot", "L1", "--key", str(keyed / "k.pem")]
    p = steamer(*common, "--expiry", "2020-01-01", "-o", str(keyed / "old.bin"))
    assert (keyed / "old.bin").stat().st_size == 136
    assert ("steamer mfg podlet-image: warning: --expiry 2020-01-01 is already past "
            "(today is ") in p.stderr and "every steamer will refuse this podlet" in p.stderr
    p = steamer(*common, "--expiry", "2099-01-01", "-o", str(keyed / "new.bin"))
    assert "warning" not in p.stderr


def test_the_simulators_log_says_units_as_the_app_does(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"duration_s": 2}))
    p = steamer("sim", "run", str(tmp_path / "s.json"))
    state = next(l for l in p.stderr.splitlines() if "state idle" in l and "dose" in l)
    assert " °C " in state and state.endswith(" µl"), state
