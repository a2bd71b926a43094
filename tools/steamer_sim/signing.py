"""Signs a normalized scenario's profiles and podlets the way each one's `sign` asks,
with the development keys of steamer_mfg.devkeys, for the simulated steamer to verify.

    from steamer_sim.signing import sign_for_sim
    runner_scenario = sign_for_sim(load_scenario("scenarios/demo.json"))

What the firmware gets, per `sign` (docs: /work/shared/spec/sim.md):

| sign | PROFILE `signed_hex` | PODLET `image_hex` (136-byte ID-chip image) |
|---|---|---|
| ok | canonical bytes + DEV signature | signature field: DEV signature |
| none | canonical bytes alone | signature field left blank (0xFF, as the unused memory) |
| wrong_key | canonical bytes + OTHER signature | signature field: OTHER signature |
| tamper | canonical bytes + a DEV signature of the same profile with version + 1 | signature field: DEV signature of the same podlet with capacity_ul + 1 |

A PODLET's `rom_crc` "bad" flips every bit of the ROM ID's CRC-8 byte (the image is
otherwise as `sign` made it): a read the 1-Wire CRC must catch.

A profile or podlet that podproto cannot encode at all (say a lot with a space, an
expiry past 2179) gets an empty string: the firmware sees nothing it could install.
Profiles are signed whatever their envelope says, so a well-signed profile with a 70 C
target reaches the firmware's envelope check. The scenario also gets `mfg_public_hex`:
the DEV public key, which the sim board provisions into the device's flash at first boot.
"""
from __future__ import annotations

import copy

from podproto import ProtocolError, podlet, profile, signing
from steamer_mfg.devkeys import DEV_PUBLIC, DEV_SEED, OTHER_SEED
from steamer_sim.scenario import ROM_CRCS


def signed_profile(prof: dict, sign: str) -> bytes:
    """The bytes a host would push for `prof` signed as `sign` says; b"" when podproto
    cannot encode the profile."""
    try:
        body = profile.encode(prof)
        if sign == "none":
            return body
        if sign == "ok":
            return body + signing.sign(DEV_SEED, body)
        if sign == "wrong_key":
            return body + signing.sign(OTHER_SEED, body)
        if sign == "tamper":
            other = dict(prof, version=(prof["version"] + 1) % 0x10000)
            return body + signing.sign(DEV_SEED, profile.encode(other))
    except ProtocolError:
        return b""
    raise ValueError(f"sign: unknown value {sign!r}")


def podlet_image(pod: dict, sign: str, rom_crc: str = "ok") -> bytes:
    """The ID-chip image of `pod` signed as `sign` says, its ROM ID's CRC-8 as `rom_crc`
    says; b"" when podproto cannot encode the podlet."""
    if rom_crc not in ROM_CRCS:
        raise ValueError(f"rom_crc: unknown value {rom_crc!r}")
    image = _signed_image(pod, sign)
    if rom_crc == "bad" and image:
        crc_at = podlet.ROM_LEN - 1
        image = image[:crc_at] + bytes([image[crc_at] ^ 0xFF]) + image[crc_at + 1:]
    return image


def _signed_image(pod: dict, sign: str) -> bytes:
    try:
        _, data = podlet.data_bytes(pod)
        if sign == "none":
            return podlet.encode(pod, b"\xff" * podlet.SIG_LEN)
        if sign == "ok":
            return podlet.encode(pod, signing.sign(DEV_SEED, data))
        if sign == "wrong_key":
            return podlet.encode(pod, signing.sign(OTHER_SEED, data))
        if sign == "tamper":
            other = dict(pod, capacity_ul=(pod["capacity_ul"] + 1) % 0x100000000)
            _, other_data = podlet.data_bytes(other)
            return podlet.encode(pod, signing.sign(DEV_SEED, other_data))
    except ProtocolError:
        return b""
    raise ValueError(f"sign: unknown value {sign!r}")


def sign_for_sim(normalized: dict) -> dict:
    """A copy of a normalized scenario (steamer_sim.scenario.load_scenario) for the
    runner: `signed_hex` in every profile (top-level and install_profile events),
    `image_hex` in every insert_podlet and swap_podlet event's podlet, and `mfg_public_hex`. The input is
    left untouched."""
    out = copy.deepcopy(normalized)
    for prof in out["profiles"]:
        prof["signed_hex"] = signed_profile(prof, prof["sign"]).hex()
    for event in out["events"]:
        if event["do"] == "install_profile":
            prof = event["profile"]
            prof["signed_hex"] = signed_profile(prof, prof["sign"]).hex()
        elif event["do"] in ("insert_podlet", "swap_podlet"):
            pod = event["podlet"]
            pod["image_hex"] = podlet_image(pod, pod["sign"], pod["rom_crc"]).hex()
    out["mfg_public_hex"] = DEV_PUBLIC.hex()
    return out
