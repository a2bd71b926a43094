"""`steamer mfg` (steamer_mfg.cli) as people run it: the real command in a subprocess,
its files checked with podproto's own verifiers (the code the steamer runs)."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from podproto import podlet, profile, signing
from steamer_mfg import cli as mfg
from steamer_mfg.devkeys import DEV_SEED

STEAMER = Path(sys.executable).with_name("steamer")

# The example profile and podlet of shared/spec/sim.md.
VITAMIN_C = {"podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,
             "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
             "max_day_ul": 5000, "min_interval_s": 14400}
PODLET_ARGS = ["--serial", "0000C0FFEE01", "--type", "3", "--capacity-ul", "3000",
               "--expiry", "2027-06-30", "--lot", "L2611"]


def steamer(*args: str, cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(STEAMER), "mfg", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """The failed command's stderr, checked to be one line of `steamer mfg CMD: ...`."""
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("steamer mfg "), proc.stderr
    return lines[0]


def write_key(tmp: Path, name: str = "mfg.pem") -> tuple[Path, bytes]:
    proc = steamer("keygen", "--out", name, cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp / name, bytes.fromhex(proc.stdout.strip())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two manufacturer keys made by `keygen`, and a signed vitamin-c profile."""
    tmp = tmp_path_factory.mktemp("keys")
    key, pub = write_key(tmp)
    other, other_pub = write_key(tmp, "other.pem")
    (tmp / "vitamin-c.json").write_text(json.dumps(VITAMIN_C, indent=1))
    proc = steamer("sign-profile", "vitamin-c.json", "--key", "mfg.pem", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return {"dir": tmp, "key": key, "pub": pub, "other": other, "other_pub": other_pub,
            "signed": tmp / "vitamin-c.bin"}


# ---- keys --------------------------------------------------------------------------------

def test_keygen_writes_a_0600_key_and_prints_only_the_public_key(tmp_path: Path) -> None:
    # A permissive umask must not loosen the key file.
    proc = steamer("keygen", "--out", "k.pem", cwd=tmp_path, umask=0)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "k.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public_hex = proc.stdout.strip()
    assert len(public_hex) == 64 and bytes.fromhex(public_hex)
    seed = mfg.load_key(path)
    assert signing.public_key(seed) == bytes.fromhex(public_hex)
    # The private key appears nowhere but in its file.
    pem_body = "".join(path.read_text().splitlines()[1:-1])
    for secret in (seed.hex(), pem_body):
        assert secret not in proc.stdout + proc.stderr
    assert steamer("pubkey", "k.pem", cwd=tmp_path).stdout.strip() == public_hex
    pub_json = json.loads(steamer("pubkey", "k.pem", "--json", cwd=tmp_path).stdout)
    assert pub_json == {"key_file": "k.pem", "public_hex": public_hex}


def test_keygen_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path, pub = write_key(tmp_path, "k.pem")
    before = path.read_bytes()
    line = one_line_error(steamer("keygen", "--out", "k.pem", cwd=tmp_path))
    assert "'k.pem' exists" in line and "--force" in line
    assert path.read_bytes() == before
    proc = steamer("keygen", "--out", "k.pem", "--force", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    new_pub = json.loads(proc.stdout)["public_hex"]
    assert new_pub != pub.hex()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]   # no temporary left over


def test_key_file_errors_are_one_line_and_never_quote_the_key(tmp_path: Path) -> None:
    path, _ = write_key(tmp_path, "k.pem")
    secret = path.read_text()
    path.chmod(0o644)
    line = one_line_error(steamer("pubkey", "k.pem", cwd=tmp_path))
    assert "mode 0644" in line and "chmod 600" in line
    assert not any(chunk in line for chunk in secret.splitlines()[1:-1])
    line = one_line_error(steamer("pubkey", "nope.pem", cwd=tmp_path))
    assert "'nope.pem': not found" in line
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    garbage.chmod(0o600)
    assert "not a PEM private key" in one_line_error(steamer("pubkey", "garbage.pem", cwd=tmp_path))
    rsa_key = tmp_path / "rsa.pem"
    rsa_key.write_bytes(rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    rsa_key.chmod(0o600)
    assert "not an Ed25519 key" in one_line_error(steamer("pubkey", "rsa.pem", cwd=tmp_path))
    line = one_line_error(steamer("sign-profile", "x.json", "--key", "k.pem", cwd=tmp_path))
    assert "x.json" in line


# ---- profiles ----------------------------------------------------------------------------

def test_sign_profile_then_verify(keys: dict) -> None:
    tmp, signed = keys["dir"], keys["signed"]
    data = signed.read_bytes()
    # Canonical bytes + signature, which podproto (the device's code) accepts.
    assert data[:-64] == profile.encode(VITAMIN_C)
    assert profile.verify(keys["pub"], data)["name"] == "vitamin-c"
    proc = steamer("sign-profile", "vitamin-c.json", "--key", "mfg.pem", "-o", "again.bin",
                   "--json", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["size_bytes"] == len(data) and info["public_hex"] == keys["pub"].hex()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp / "again.bin").read_bytes() == data   # Ed25519 is deterministic
    for how in (["--pub", keys["pub"].hex()], ["--key", "mfg.pem"]):
        proc = steamer("verify", "vitamin-c.bin", *how, cwd=tmp)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.startswith("OK vitamin-c.bin: signed profile 'vitamin-c'")
    out = json.loads(steamer("verify", "vitamin-c.bin", "--key", "mfg.pem", "--json", cwd=tmp).stdout)
    assert out["ok"] is True and out["kind"] == "profile" and out["fields"]["version"] == 1


def test_verify_with_another_key_fails(keys: dict) -> None:
    proc = steamer("verify", "vitamin-c.bin", "--key", "other.pem", cwd=keys["dir"])
    assert proc.returncode == 1
    assert proc.stdout.startswith("FAIL vitamin-c.bin: signed profile 'vitamin-c'")
    assert "bad signature" in proc.stdout
    out = json.loads(steamer("verify", "vitamin-c.bin", "--pub", keys["other_pub"].hex(),
                             "--json", cwd=keys["dir"]).stdout)
    assert out["ok"] is False and out["kind"] == "profile" and "bad signature" in out["reason"]


def test_verify_names_the_development_key_when_it_signed(keys: dict) -> None:
    dev_signed = keys["dir"] / "dev.bin"
    dev_signed.write_bytes(signing.sign_profile(DEV_SEED, VITAMIN_C))
    proc = steamer("verify", "dev.bin", "--key", "mfg.pem", cwd=keys["dir"])
    assert proc.returncode == 1 and "DEVELOPMENT key" in proc.stdout


def test_a_single_bit_flip_anywhere_fails_verification(keys: dict) -> None:
    data = keys["signed"].read_bytes()
    assert mfg.verify_bytes(data, keys["pub"]).ok
    # Every bit, through the function `verify` runs (the CLI for a few, below).
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        result = mfg.verify_bytes(bytes(flipped), keys["pub"])
        assert not result.ok, f"bit {i} flipped still verifies"
        assert result.kind == "profile", i
    tmp = keys["dir"]
    # In the format byte, the name, the signature's R and its S.
    for byte in (0, len(data) - 65, len(data) - 60, len(data) - 1):
        flipped = bytearray(data)
        flipped[byte] ^= 0x10
        (tmp / "flipped.bin").write_bytes(flipped)
        proc = steamer("verify", "flipped.bin", "--pub", keys["pub"].hex(), cwd=tmp)
        assert proc.returncode == 1, (byte, proc.stdout)
        assert proc.stdout.startswith("FAIL flipped.bin: signed profile")


@pytest.mark.parametrize("change, field", [
    ({"outlet_target_c": 70.0}, "outlet_target_c: want a number 30.0..55.0"),
    ({"max_day_ul": 2000}, "max_day_ul: 2000 is below max_session_ul 2500"),
    ({"session_s": 5000}, "session_s: want an integer 10..3600"),
    ({"name": "x" * 25}, "name: want 1..24"),
    ({"session_s": None}, "session_s: missing"),
    ({"podlet_type": True}, "podlet_type: want an integer, got true"),
    ({"dose_rate": 5}, "dose_rate: unknown field (did you mean 'dose_rate_ul_min'?)"),
])
def test_out_of_envelope_profile_is_refused_naming_the_field(keys: dict, change: dict,
                                                             field: str) -> None:
    tmp = keys["dir"]
    p = {k: v for k, v in dict(VITAMIN_C, **change).items() if v is not None}
    (tmp / "bad.json").write_text(json.dumps(p))
    line = one_line_error(steamer("sign-profile", "bad.json", "--key", "mfg.pem", cwd=tmp))
    assert line.startswith(f"steamer mfg sign-profile: bad.json: {field}"), line
    assert not (tmp / "bad.bin").exists()


def test_bad_json_names_line_and_column(keys: dict) -> None:
    tmp = keys["dir"]
    (tmp / "broken.json").write_text('{"podlet_type": 3,\n "version": 1\n "name": "x"}\n')
    line = one_line_error(steamer("sign-profile", "broken.json", "--key", "mfg.pem", cwd=tmp))
    assert "broken.json: not valid JSON (line 3 column 2:" in line
    (tmp / "dup.json").write_text('{"version": 1, "version": 2}')
    line = one_line_error(steamer("sign-profile", "dup.json", "--key", "mfg.pem", cwd=tmp))
    assert "duplicate key 'version'" in line


# ---- podlets -----------------------------------------------------------------------------

def crc8_maxim(data: bytes) -> int:
    """Dallas/Maxim CRC-8 written out from the polynomial x^8 + x^5 + x^4 + 1 (LSB first),
    independently of podproto's."""
    crc = 0
    for byte in data:
        for bit in range(8):
            mix = (crc ^ (byte >> bit)) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
    return crc


def test_crc8_matches_maxims_example() -> None:
    # Maxim application note 27's ROM: 02 1C B8 01 00 00 00, CRC A2.
    rom = bytes.fromhex("021cb801000000")
    assert crc8_maxim(rom) == 0xA2 == podlet.crc8(rom)


def test_podlet_image_verifies_on_cpython(keys: dict) -> None:
    tmp = keys["dir"]
    proc = steamer("podlet-image", *PODLET_ARGS, "--key", "mfg.pem", "-o", "pod.bin", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    image = (tmp / "pod.bin").read_bytes()
    assert len(image) == 136
    rom = image[:8]
    assert rom[0] == 0x2D and rom[1:7] == bytes.fromhex("0000c0ffee01")[::-1]
    assert crc8_maxim(rom[:7]) == rom[7]
    assert podlet.verify(keys["pub"], image) == {
        "serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
        "expiry": "2027-06-30", "expiry_day": podlet.day_of(2027, 6, 30), "lot": "L2611"}
    assert image[8 + 80:] == b"\xff" * 48   # memory 80..127: unused, blank
    proc = steamer("verify", "pod.bin", "--key", "mfg.pem", cwd=tmp)
    assert proc.returncode == 0 and proc.stdout.startswith("OK pod.bin: podlet image 0000c0ffee01")
    proc = steamer("verify", "pod.bin", "--key", "other.pem", cwd=tmp)
    assert proc.returncode == 1 and "podlet image" in proc.stdout and "bad signature" in proc.stdout
    # Every bit flip is caught, the unsigned blank memory included.
    for i in range(len(image) * 8):
        flipped = bytearray(image)
        flipped[i // 8] ^= 1 << (i % 8)
        assert not mfg.verify_bytes(bytes(flipped), keys["pub"]).ok, i


def test_podlet_image_hex_and_json(keys: dict) -> None:
    tmp = keys["dir"]
    proc = steamer("podlet-image", *PODLET_ARGS, "--key", "mfg.pem", "--hex", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    image = bytes.fromhex(proc.stdout.strip())   # stdout is the hex alone
    assert podlet.verify(keys["pub"], image)["serial"] == "0000c0ffee01"
    assert not list(tmp.glob("podlet-*.bin"))
    (tmp / "pod.hex").write_text(proc.stdout)
    proc = steamer("verify", "pod.hex", "--pub", keys["pub"].hex(), "--json", cwd=tmp)
    assert proc.returncode == 0 and json.loads(proc.stdout)["kind"] == "podlet"
    proc = steamer("podlet-image", *PODLET_ARGS, "--key", "mfg.pem", "--json", cwd=tmp)
    info = json.loads(proc.stdout)
    assert info["file"] == "podlet-0000c0ffee01.bin" and info["image_hex"] == image.hex()
    assert (tmp / info["file"]).read_bytes() == image
    assert info["rom_id_hex"] == image[:8].hex() and info["size_bytes"] == 136


@pytest.mark.parametrize("option, value, message", [
    ("--serial", "0x00c0ffee01", "--serial: want 12 hex digits"),
    ("--type", "256", "--type: want 0..255"),
    ("--capacity-ul", "0", "--capacity-ul: want 1..4294967295"),
    ("--expiry", "2027-02-30", "--expiry: not a date"),
    ("--lot", "L 2611", "--lot: want 1..8 printable ASCII"),
])
def test_podlet_image_refuses_bad_options(keys: dict, option: str, value: str,
                                          message: str) -> None:
    args = list(PODLET_ARGS)
    args[args.index(option) + 1] = value
    line = one_line_error(steamer("podlet-image", *args, "--key", "mfg.pem", "-o", "x.bin",
                                  cwd=keys["dir"]))
    assert message in line
    assert not (keys["dir"] / "x.bin").exists()


def test_verify_says_when_a_file_is_neither(keys: dict) -> None:
    proc = steamer("verify", "vitamin-c.json", "--key", "mfg.pem", cwd=keys["dir"])
    assert proc.returncode == 1
    assert "neither a signed profile nor a 136-byte podlet image" in proc.stdout
    line = one_line_error(steamer("verify", "vitamin-c.bin", "--pub", "abc", cwd=keys["dir"]))
    assert "--pub: want 64 hex digits" in line


def test_help_has_examples(tmp_path: Path) -> None:
    for command in ("keygen", "pubkey", "sign-profile", "podlet-image", "verify"):
        proc = steamer(command, "--help", cwd=tmp_path)
        assert proc.returncode == 0
        assert "Examples:\n  steamer mfg " + command in proc.stdout
