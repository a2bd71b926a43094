"""The simulator's development keys (steamer_mfg.devkeys) and sign_for_sim: what each
scenario `sign` turns into, judged by podproto's verifiers as the firmware will judge it."""
from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest

from podproto import ProtocolError, podlet, profile, signing
from steamer_sim import driver as sim
from steamer_mfg.devkeys import DEV_PUBLIC, DEV_SEED, OTHER_PUBLIC, OTHER_SEED
from steamer_sim.scenario import load_scenario
from steamer_sim.signing import podlet_image, sign_for_sim, signed_profile

PROFILE = {"podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,
           "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 14400}
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2027-06-30", "lot": "L2611"}
SIGNS = ("ok", "none", "wrong_key", "tamper")


def scenario(sign: str, podlet_fields: dict | None = None) -> dict:
    """A normalized scenario with the profile top-level and in an event, and a podlet."""
    return load_scenario({
        "duration_s": 60,
        "profiles": [dict(PROFILE, sign=sign)],
        "events": [{"t_s": 1, "do": "install_profile", "profile": dict(PROFILE, version=2, sign=sign)},
                   {"t_s": 2, "do": "insert_podlet", "podlet": dict(PODLET, sign=sign, **(podlet_fields or {}))},
                   {"t_s": 3, "do": "start_session"}]})


def test_dev_keys_are_the_seeds_public_keys() -> None:
    assert signing.public_key(DEV_SEED) == DEV_PUBLIC
    assert signing.public_key(OTHER_SEED) == OTHER_PUBLIC
    assert DEV_PUBLIC != OTHER_PUBLIC


@pytest.mark.parametrize("sign, reason", [
    ("ok", None),
    ("none", "signed profile: truncated"),
    ("wrong_key", "signed profile: bad signature"),
    ("tamper", "signed profile: bad signature"),
])
def test_profiles_verify_only_when_ok(sign: str, reason: str | None) -> None:
    normalized = scenario(sign)
    before = copy.deepcopy(normalized)
    out = sign_for_sim(normalized)
    assert normalized == before                     # the caller's scenario is untouched
    assert out["mfg_public_hex"] == DEV_PUBLIC.hex()
    profiles = [out["profiles"][0], out["events"][0]["profile"]]
    assert [p["version"] for p in profiles] == [1, 2]
    for p in profiles:
        data = bytes.fromhex(p["signed_hex"])
        body = profile.encode(p)
        assert data.startswith(body)
        if reason is None:
            assert profile.verify(DEV_PUBLIC, data)["version"] == p["version"]
            continue
        with pytest.raises(ProtocolError) as err:
            profile.verify(DEV_PUBLIC, data)
        assert str(err.value).startswith(reason)
        sig = data[len(body):]
        if sign == "none":
            assert sig == b""
        elif sign == "wrong_key":
            assert signing.sign(OTHER_SEED, body) == sig
        else:   # a good DEV signature, over the same profile one version on
            other = profile.encode(dict(p, version=p["version"] + 1))
            assert profile.verify(DEV_PUBLIC, other + sig)["version"] == p["version"] + 1


@pytest.mark.parametrize("sign", SIGNS)
def test_podlets_verify_only_when_ok(sign: str) -> None:
    pod = sign_for_sim(scenario(sign))["events"][1]["podlet"]
    image = bytes.fromhex(pod["image_hex"])
    assert len(image) == podlet.IMAGE_LEN
    assert podlet.decode(image)[0]["capacity_ul"] == 3000   # what the chip says, whatever the sign
    if sign == "ok":
        assert podlet.verify(DEV_PUBLIC, image)["serial"] == "0000c0ffee01"
        return
    with pytest.raises(ProtocolError, match="podlet signature: bad signature"):
        podlet.verify(DEV_PUBLIC, image)
    if sign == "wrong_key":
        assert podlet.verify(OTHER_PUBLIC, image)
    elif sign == "tamper":
        _, _, sig = podlet.decode(image)
        _, other = podlet.data_bytes(dict(PODLET, capacity_ul=3001))
        assert signing.sign(DEV_SEED, other) == sig


def test_out_of_envelope_profiles_are_still_signed() -> None:
    # The firmware must be able to see a well-signed profile that its envelope refuses.
    data = signed_profile(dict(PROFILE, outlet_target_c=70.0), "ok")
    with pytest.raises(ProtocolError, match="outside the hardware envelope"):
        profile.verify(DEV_PUBLIC, data)
    assert signing.sign(DEV_SEED, data[:-64]) == data[-64:]


def test_what_podproto_cannot_encode_becomes_empty() -> None:
    # Valid scenarios, but no ID chip can hold a lot with a space or a 1999 expiry.
    for fields in ({"lot": "L 26"}, {"expiry": "1999-12-31"}):
        assert sign_for_sim(scenario("ok", fields))["events"][1]["podlet"]["image_hex"] == ""
    assert signed_profile({"version": 1}, "ok") == b""
    assert podlet_image({"serial": "zz"}, "tamper") == b""
    assert signed_profile(dict(PROFILE, version=65535), "tamper")   # wraps, still encodes


def test_sim_run_hands_the_runner_the_signed_scenario(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in runner (on micropython, as the real one) that returns what it was given.
    runner = tmp_path / "echo_simrun.py"
    runner.write_text(textwrap.dedent("""
        import json, sys
        with open(sys.argv[1]) as f:
            print(json.dumps({"contract": 1, "scenario": json.load(f)}))
    """))
    monkeypatch.setenv(sim.SIMRUN_ENV, str(runner))
    raw = {"duration_s": 60, "profiles": [dict(PROFILE, sign="wrong_key")],
           "events": [{"t_s": 1, "do": "insert_podlet", "podlet": PODLET}]}
    got = sim.run_scenario(raw, None)["scenario"]
    assert got == sign_for_sim(load_scenario(raw))
    assert got["mfg_public_hex"] == DEV_PUBLIC.hex()
    assert podlet.verify(DEV_PUBLIC, bytes.fromhex(got["events"][0]["podlet"]["image_hex"]))


@pytest.mark.parametrize("sign", SIGNS)
def test_bad_rom_crc_flips_only_the_crc_byte(sign: str) -> None:
    good = sign_for_sim(scenario(sign))["events"][1]["podlet"]
    bad = sign_for_sim(scenario(sign, {"rom_crc": "bad"}))["events"][1]["podlet"]
    assert good["rom_crc"] == "ok" and bad["rom_crc"] == "bad"
    good_image, bad_image = bytes.fromhex(good["image_hex"]), bytes.fromhex(bad["image_hex"])
    crc_at = podlet.ROM_LEN - 1
    assert bad_image[crc_at] == good_image[crc_at] ^ 0xFF
    assert bad_image[:crc_at] == good_image[:crc_at]
    assert bad_image[crc_at + 1:] == good_image[crc_at + 1:]
    # The CRC is checked before anything else, whatever the signature.
    with pytest.raises(ProtocolError, match="podlet rom: crc8 mismatch"):
        podlet.verify(DEV_PUBLIC, bad_image)


def test_rom_crc_defaults_to_ok_and_unknown_values_are_refused() -> None:
    assert podlet_image(PODLET, "ok") == podlet_image(PODLET, "ok", "ok")
    assert podlet.verify(DEV_PUBLIC, podlet_image(PODLET, "ok", "ok"))
    assert podlet_image(dict(PODLET, lot="L 26"), "ok", "bad") == b""   # nothing to corrupt
    with pytest.raises(ValueError, match="rom_crc"):
        podlet_image(PODLET, "ok", "flipped")
