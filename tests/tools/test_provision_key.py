"""`steamer mfg provision-key` (steamer_mfg.trustkey) writing the manufacturer public
key to a virtual board with the real mpremote, and the firmware's own trust module
reading what arrived."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from steamer_mfg import trustkey as devicekey
from steamer_mfg import cli as mfg
from steamer_mfg.devkeys import DEV_PUBLIC, DEV_SEED
from steamer_dev.paths import BOARDS, DEVICE, PROTOCOL, micropython_exe
from steamer_dev.vboard import VirtualBoard
from steamer_harness.cli import run_registered


def run_cli(argv: list[str]) -> int:
    """What `steamer mfg ARGV` runs, through the module's register()."""
    return run_registered(mfg.register, argv)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("keys")
    a, b = tmp / "a.pem", tmp / "b.pem"
    return {"a": a, "a_pub": mfg.generate_key(a), "b": b, "b_pub": mfg.generate_key(b),
            "dir": tmp}


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualBoard]:
    with VirtualBoard(root=tmp_path_factory.mktemp("root")) as vb:
        yield vb


@pytest.fixture
def vb(board: VirtualBoard) -> VirtualBoard:
    """The module's virtual board with a blank file system."""
    for p in board.root.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return board


def firmware_key(data_dir: Path) -> str:
    """The key the firmware's fw.trust loads from data_dir, run on MicroPython."""
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(DEVICE), str(PROTOCOL),
                                                        str(BOARDS / "sim")]))
    code = ("from fw.trust import Trust\nt = Trust(%r)\n"
            "print(t.key.hex() if t.key is not None else None)" % str(data_dir))
    proc = subprocess.run([micropython_exe(), "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_device_path_is_the_firmwares():
    common = (BOARDS / "common" / "realboard.py").read_text()
    trust = (DEVICE / "fw" / "trust.py").read_text()
    assert 'data_dir = "/data"' in common and 'KEY_FILE = "mfg.pub"' in trust
    assert devicekey.DEVICE_KEY_PATH == "data/mfg.pub"


def test_writes_the_key_and_the_firmware_trusts_it(vb: VirtualBoard, keys: dict,
                                                   capsys: pytest.CaptureFixture[str]):
    assert run_cli(["provision-key", "--port", vb.port, "--key", str(keys["a"])]) == 0
    out, err = capsys.readouterr()
    assert (vb.root / "data" / "mfg.pub").read_bytes() == keys["a_pub"]
    assert sorted(p.name for p in (vb.root / "data").iterdir()) == ["mfg.pub"]   # no .new
    assert out.splitlines()[0].startswith("%s: wrote key %s to data/mfg.pub" % (
        vb.port, keys["a_pub"].hex()))
    assert "verified" in out and "reset the board" in out
    for step in ("reading data/mfg.pub", "writing data/mfg.pub.new (32 bytes)",
                 "verifying data/mfg.pub.new by SHA-256", "renaming data/mfg.pub.new"):
        assert "provision-key: " + step in err
    assert firmware_key(vb.root / "data") == keys["a_pub"].hex()
    # The private key never went anywhere: nothing on the board holds more than the key.
    seed = mfg.load_key(keys["a"])
    assert all(seed not in p.read_bytes() for p in vb.root.rglob("*") if p.is_file())


def test_same_key_again_changes_nothing(vb: VirtualBoard, keys: dict,
                                        capsys: pytest.CaptureFixture[str]):
    first = devicekey.provision(vb.port, keys["a_pub"])
    assert first.action == "written" and first.verified and first.previous_hex is None
    stamp = (vb.root / "data" / "mfg.pub").stat().st_mtime_ns
    assert run_cli(["provision-key", "--port", vb.port, "--pub", keys["a_pub"].hex(),
                    "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["action"] == "unchanged" and result["verified"] is True
    assert result["previous_hex"] == result["public_hex"] == keys["a_pub"].hex()
    assert (vb.root / "data" / "mfg.pub").stat().st_mtime_ns == stamp


def test_another_key_is_refused_unless_forced(vb: VirtualBoard, keys: dict,
                                              capsys: pytest.CaptureFixture[str]):
    devicekey.provision(vb.port, keys["a_pub"])
    assert run_cli(["provision-key", "--port", vb.port, "--key", str(keys["b"])]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == ("steamer mfg provision-key: the board already holds another key, %s: "
                   "refusing to replace it (--force does, and the board then refuses "
                   "whatever the old key signed)" % keys["a_pub"].hex())
    assert (vb.root / "data" / "mfg.pub").read_bytes() == keys["a_pub"]

    assert run_cli(["provision-key", "--port", vb.port, "--key", str(keys["b"]),
                    "--force"]) == 0
    out = capsys.readouterr().out
    assert "replaced key %s (--force)" % keys["a_pub"].hex() in out
    assert firmware_key(vb.root / "data") == keys["b_pub"].hex()


def test_a_damaged_write_is_caught_and_the_old_key_kept(vb: VirtualBoard, keys: dict):
    devicekey.provision(vb.port, keys["a_pub"])
    new = vb.root / "data" / "mfg.pub.new"

    def tamper() -> None:
        data = bytearray(new.read_bytes())
        data[5] ^= 0x10                     # one flipped bit on the board's flash
        new.write_bytes(bytes(data))

    with pytest.raises(devicekey.ProvisionError) as exc:
        devicekey.provision(vb.port, keys["b_pub"], force=True, after_write=tamper)
    assert str(exc.value).startswith("verification failed: data/mfg.pub.new on the board")
    assert str(exc.value).endswith("data/mfg.pub left as it was")
    assert (vb.root / "data" / "mfg.pub").read_bytes() == keys["a_pub"]
    assert not new.exists()


def test_missing_port_is_a_one_line_error(keys: dict, capsys: pytest.CaptureFixture[str]):
    assert run_cli(["provision-key", "--port", "/dev/ttyNOPE0", "--key", str(keys["a"])]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "steamer mfg provision-key: port /dev/ttyNOPE0 does not exist (is the board plugged in?)")


# ---- the key given: every form, every mistake (nothing reaches a board) ---------------------

def test_pub_in_every_form(keys: dict):
    pub = keys["a_pub"]
    d = keys["dir"]
    (d / "pub.hex").write_text(pub.hex().upper() + "\n")
    (d / "pub.bin").write_bytes(pub)
    private = serialization.load_pem_private_key(keys["a"].read_bytes(), None)
    assert isinstance(private, Ed25519PrivateKey)
    (d / "pub.pem").write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for given in (pub.hex(), str(d / "pub.hex"), str(d / "pub.bin"), str(d / "pub.pem")):
        assert devicekey.public_key_from(pub=given) == pub, given
    assert devicekey.public_key_from(key=keys["a"]) == pub


@pytest.mark.parametrize("option, value, message", [
    ("--key", "missing.pem", "key file 'missing.pem': not found (make one with: steamer mfg "
                             "keygen --out missing.pem)"),
    ("--pub", "missing.pub", "--pub: 'missing.pub' is neither 64 hex digits nor an existing "
                             "file"),
    ("--pub", "a.pem", "--pub: 'a.pem' holds a private key: give it with --key (only its "
                       "public half goes to the device)"),
    ("--pub", "short.hex", "--pub: 'short.hex': want 64 hex digits (as steamer mfg pubkey "
                           "prints), the 32 raw bytes or a PEM public key; it holds 33 bytes "
                           "that are none of these"),
    ("--pub", "half.hex", "--pub: 'half.hex': want 64 hex digits (as steamer mfg pubkey "
                          "prints), the 32 raw bytes or a PEM public key; it holds 32 bytes "
                          "that are none of these"),
    ("--pub", DEV_PUBLIC.hex(), "--pub: that is the simulator's development key, which "
                                "anybody can sign with: no real steamer may trust it (make "
                                "the production key with steamer mfg keygen)"),
    ("--key", "dev.pem", "--key: that is the simulator's development key"),
], ids=["key-missing", "pub-missing", "private-as-pub", "short", "half-hex", "dev-pub",
        "dev-key"])
def test_a_wrong_key_is_a_one_line_error(keys: dict, option: str, value: str, message: str,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch):
    d = keys["dir"]
    monkeypatch.chdir(d)
    (d / "short.hex").write_text(keys["a_pub"].hex()[:32] + "\n")
    (d / "half.hex").write_text(keys["a_pub"].hex()[:32])
    dev = Ed25519PrivateKey.from_private_bytes(DEV_SEED)
    (d / "dev.pem").write_bytes(dev.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (d / "dev.pem").chmod(0o600)
    # A port that does not exist: a wrong key must be refused before any board is touched.
    assert run_cli(["provision-key", "--port", "/dev/ttyNOPE0", option, value]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("steamer mfg provision-key: " + message), err


def test_pub_and_key_together_is_a_usage_error(keys: dict):
    with pytest.raises(SystemExit) as exc:
        run_cli(["provision-key", "--port", "/dev/null", "--pub", keys["a_pub"].hex(),
                 "--key", str(keys["a"])])
    assert exc.value.code == 2


def test_a_board_running_the_firmware_is_asked_for_its_maintenance_boot(
        tmp_path: Path, keys: dict, capsys: pytest.CaptureFixture[str], running_main: str):
    """Its watchdog would reset it mid-write: the key waits for the maintenance boot, and
    with none in --wait, nothing is written (steamer_mfg.usb.wait_for_maintenance)."""
    with VirtualBoard(root=tmp_path / "root", run_main=True) as running:
        (running.root / "main.py").write_text(running_main)
        running.boot_main()
        code = run_cli(["provision-key", "--port", running.port, "--pub", keys["a_pub"].hex(),
                        "--wait", "2"])
        _, err = capsys.readouterr()
        assert code == 1
        assert "the board is running the steamer firmware: power the board off" in err, err
        assert "start it in its maintenance boot" in err.strip().splitlines()[-1]
        assert not (running.root / "data").exists()
