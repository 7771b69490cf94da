# A client id every MQTT 3.1.1 broker must take, for a broker that refuses
# the node's own name with CONNACK 2 (identifier rejected). 3.1.1 section
# 3.1.3.1 obliges a broker to take only 1 to 23 of 0-9, a-z and A-Z; one may
# refuse a '-', a '_' or a 24th character, and that is legal. Loaded at such
# a refusal only.
from compat import const

_LONGEST = const(23)
_SUFFIX = const(7)  # a 32-bit checksum in base 36 (36^7 > 2^32)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _strict_char(c):
    return "0" <= c <= "9" or "a" <= c <= "z" or "A" <= c <= "Z"


def _crc32(data):
    # CRC-32 (IEEE, as binascii.crc32), bit by bit: firmware built without
    # binascii.crc32 gives the same id. A few dozen bytes, once per refusal.
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def strict_client_id(name):
    """name's letters and digits, cut to leave room for a checksum of the
    whole name in base 36, so that names differing only in a '-', a '_' or
    past the cut stay apart on the broker. None when name is already one
    that every broker must take."""
    if 0 < len(name) <= _LONGEST and all(_strict_char(c) for c in name):
        return None
    code = _crc32(name.encode())
    suffix = ""
    for _ in range(_SUFFIX):
        suffix = _DIGITS[code % 36] + suffix
        code //= 36
    kept = "".join(c for c in name if _strict_char(c))
    return kept[: _LONGEST - _SUFFIX] + suffix


def adopt(client, log):
    """After a CONNACK 2: the next connects use the strict id, said once.
    A refused id that is strict already is in the broker's own list of
    refusals, which no other id derived here would get past: the node
    goes on retrying (an operator may allow it), and says why."""
    refused = client.session.client_id
    strict = strict_client_id(refused)
    if strict is None:
        log("mqtt: the broker refused client id %r, which MQTT 3.1.1 brokers must take: check its settings" % refused)
        return
    client.session.client_id = strict
    log(
        "mqtt: the broker refused client id %r (CONNACK 2, identifier rejected); "
        "connecting as %r, one every MQTT 3.1.1 broker must take" % (refused, strict)
    )
