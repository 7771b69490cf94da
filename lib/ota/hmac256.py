# HMAC-SHA256 (RFC 2104 with SHA-256, as RFC 4231 tests it), fed in pieces:
# MicroPython has hashlib.sha256 but no hmac module. A release manifest
# arrives a chunk at a time and is authenticated as it is written, so the
# inner hash is updated per chunk and only 32 bytes are kept at the end.

import hashlib

from compat import const

_BLOCK = const(64)  # SHA-256's block size: RFC 2104's B
_IPAD = const(0x36)
_OPAD = const(0x5C)


class HMAC:
    def __init__(self, key):
        # RFC 2104 section 2: a key longer than B is hashed first; a shorter
        # one is padded with zeros to B.
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        inner = bytearray(_BLOCK)
        outer = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            inner[i] = k ^ _IPAD
            outer[i] = k ^ _OPAD
        self._inner = hashlib.sha256(inner)
        self._outer_key = bytes(outer)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        """The 32-byte tag. Once: MicroPython's sha256 is spent by digest()."""
        outer = hashlib.sha256(self._outer_key)
        outer.update(self._inner.digest())
        return outer.digest()


def hmac_sha256(key, data):
    mac = HMAC(key)
    mac.update(data)
    return mac.digest()


def equal(a, b):
    """Compares two tags in a time that does not depend on where they
    differ (a byte-by-byte early exit would tell a forger how much of a
    guessed tag is right)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
