"""The development manufacturer keys: published keys that only simulated steamers trust.

These seeds are public (they are in this file): anyone can sign with them. A simulated
steamer is provisioned with DEV_PUBLIC at its first boot (the sim driver hands it over as
the scenario's `mfg_public_hex`), so scenarios can present profiles and podlets signed
by "the manufacturer". No real steamer may ever be provisioned with DEV_PUBLIC or
OTHER_PUBLIC, and nothing signed with them may ship: production keys are made with
`steamer mfg keygen` and never leave the manufacturer's key file.

    from steamer_mfg.devkeys import DEV_SEED, DEV_PUBLIC
    from podproto import signing
    signed = signing.sign_profile(DEV_SEED, profile)   # accepted by simulated steamers only

DEV_SEED is SHA-256 of "steamer simulator: development manufacturer key (never
production)", OTHER_SEED of "steamer simulator: other key, for wrong_key scenarios";
the public keys are written out so the firmware side can check against them without
`cryptography` (tests/mfg checks they match the seeds).
"""
from __future__ import annotations

# The development manufacturer key: what `"sign": "ok"` in a scenario signs with.
DEV_SEED = bytes.fromhex("f2da556dd344b3b9651d054bc84dc64d0418f46d101ba680b0175011803a742a")
DEV_PUBLIC = bytes.fromhex("0a1e69fe43c122e4135aaa654966f10f15d95e5f7d1846b20746a63e4c27fee2")

# A key nobody trusts, not even a simulated steamer: what `"sign": "wrong_key"` signs with.
OTHER_SEED = bytes.fromhex("ad033569cd1c8517d02fb7bbc6e580410446d9a287d60d9fb99a87fccaf6baa8")
OTHER_PUBLIC = bytes.fromhex("0684949e5c1d5122617fb957a72d98bc1b91b40c59a032fd87dbf18c9f924177")
