"""The fixture's signed profile in two versions, for the tests of what fw.trust keeps on
flash: OLD is signed.PROFILE_OK_HEX (version 1), NEW the same profile as version 2 with
the development key's signature (the fixture's tampered profile carries exactly that
signature, of version + 1). TYPE is their podlet type."""
from podproto import profile as profile_fmt
import signed

OLD = bytes.fromhex(signed.PROFILE_OK_HEX)


def _version_2():
    tamper = bytes.fromhex(signed.PROFILE_TAMPER_HEX)
    body = OLD[:-64]
    assert tamper[:-64] == body
    prof = profile_fmt.decode(body)
    assert prof["version"] == 1
    prof["version"] = 2
    return profile_fmt.encode(prof) + tamper[-64:]


NEW = _version_2()
TYPE = profile_fmt.decode(OLD[:-64])["podlet_type"]
