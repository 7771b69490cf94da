# HMAC-SHA256 as the updater computes it (lib/ota/hmac256.py): RFC 4231's
# test vectors, fed whole and a piece at a time, and the constant-time
# comparison. tests/test_ota_host.py checks it against CPython's hmac too.
from binascii import hexlify, unhexlify

from ota.hmac256 import HMAC, equal, hmac_sha256

# RFC 4231 section 4: (key, data, HMAC-SHA-256), all hex. Case 5 (a
# truncated output) does not apply: the updater keeps all 32 bytes.
VECTORS = (
    # 4.2 test case 1: a 20-byte key
    ("0b" * 20, hexlify(b"Hi There"), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    # 4.3 test case 2: a key shorter than the output
    (hexlify(b"Jefe"), hexlify(b"what do ya want for nothing?"),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    # 4.4 test case 3: 50 bytes of 0xdd
    ("aa" * 20, "dd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    # 4.5 test case 4: a 25-byte key
    ("0102030405060708090a0b0c0d0e0f10111213141516171819", "cd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    # 4.7 test case 6: a key longer than the block (hashed first)
    ("aa" * 131, hexlify(b"Test Using Larger Than Block-Size Key - Hash Key First"),
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    # 4.8 test case 7: key and data both longer than the block
    ("aa" * 131, hexlify(b"This is a test using a larger than block-size key and a larger than block-size data. "
                         b"The key needs to be hashed before being used by the HMAC algorithm."),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
)  # fmt: skip


def test_rfc4231_vectors():
    for key, data, expected in VECTORS:
        tag = hmac_sha256(unhexlify(key), unhexlify(data))
        assert str(hexlify(tag), "ascii") == expected, (key, expected)


def test_fed_a_piece_at_a_time_gives_the_same_tag():
    for key, data, expected in VECTORS:
        data = unhexlify(data)
        for size in (1, 7, 64, 1000):
            mac = HMAC(unhexlify(key))
            for at in range(0, len(data), size):
                mac.update(data[at : at + size])
            assert str(hexlify(mac.digest()), "ascii") == expected


def test_an_empty_message_and_an_empty_key():
    # CPython: hmac.new(b"", b"", "sha256").hexdigest()
    assert str(hexlify(hmac_sha256(b"", b"")), "ascii") == (
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"
    )


def test_equal_compares_whole_tags():
    a = hmac_sha256(b"key", b"message")
    b = bytearray(a)
    assert equal(a, bytes(b))
    b[31] ^= 1
    assert not equal(a, bytes(b))
    b[31] ^= 1
    b[0] ^= 0x80
    assert not equal(a, bytes(b))
    assert not equal(a, a[:31])
