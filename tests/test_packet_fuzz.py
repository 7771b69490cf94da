"""Fuzzing the decoder: random bytes, mutated valid packets and mutated
streams. Whatever comes in, only ProtocolError may come out (never
IndexError, UnicodeError, MemoryError, ValueError, never a hang); every
packet it accepts re-encodes to the same bytes with our encoders; reads of
any size give the same result; it never sizes anything by a length field;
and the MicroPython Unix port decodes a share of the same corpus to the same
outcomes.

FUZZ_CASES (default 100000) sets the number of cases, FUZZ_SEED the seed;
`make fuzz` runs 1,000,000."""

import os
import random
import signal
import struct
import time
import tracemalloc

import pytest

from harness import micropython
from mqtt.broker_codec import (
    BrokerPacket,
    decode,
    encode_connack,
    encode_pingresp,
    encode_suback,
    iter_filters,
    iter_subscriptions,
)
from mqtt.packet import (
    CONNACK,
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    ProtocolError,
    decode_header,
    encode_ack,
    encode_connect,
    encode_disconnect,
    encode_pingreq,
    encode_publish,
    encode_subscribe,
    encode_unsubscribe,
    remaining_length_size,
)

FUZZ_CASES = int(os.environ.get("FUZZ_CASES", "100000"))
FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20140929"))  # MQTT 3.1.1 became an OASIS standard on 29 Oct 2014
MICROPYTHON_SHARE = 10  # 1 case in 10 is also decoded on the Unix port...
MICROPYTHON_MAX = 20000  # ...up to this many
WATCHDOG_S = 20  # no stretch of 1000 cases may take longer: a hang fails the test

# ---- valid packets with random fields -------------------------------------------

_LEVELS = ("house", "kitchen", "t", "", "température", "€", "😀", "$SYS", "a b", "x" * 40)
_FILTER_LEVELS = _LEVELS + ("+", "+", "#")
_ACKS = (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK)


def _topic(rng):
    return "/".join(rng.choice(_LEVELS) for _ in range(rng.randint(1, 4))) or "t"


def _filter(rng):
    levels = [rng.choice(_FILTER_LEVELS) for _ in range(rng.randint(1, 4))]
    levels = [level for level in levels[:-1] if level != "#"] + levels[-1:]
    return "/".join(levels) or "+"


def _binary(rng, most=40):
    return rng.randbytes(rng.randint(0, most))


def valid_packet(rng):
    buf = bytearray(4096)
    kind = rng.randrange(14)
    if kind < 4:
        qos = rng.randrange(3)
        payload = _binary(rng, rng.choice((8, 200, 300)))
        n = encode_publish(
            buf, 0, _topic(rng), payload, qos, rng.random() < 0.3, qos > 0 and rng.random() < 0.3, rng.randint(1, 65535)
        )
    elif kind < 6:
        n = encode_ack(buf, 0, rng.choice(_ACKS), rng.choice((1, 65535, rng.randint(1, 65535))))
    elif kind == 6:
        will = rng.random() < 0.5
        username = rng.choice((None, "user", "ü"))
        n = encode_connect(
            buf, 0, rng.choice(("", "node-1", "é" * 5)), rng.randint(0, 65535), True, username,
            _binary(rng) if username is not None and rng.random() < 0.5 else None,
            _topic(rng) if will else None, _binary(rng) if will else None,
            rng.randrange(3) if will else 0, will and rng.random() < 0.5,
        )  # fmt: skip
    elif kind == 7:
        code = rng.randrange(6)
        n = encode_connack(buf, 0, code == 0 and rng.random() < 0.5, code)
    elif kind == 8:
        subscriptions = [(_filter(rng), rng.randrange(3)) for _ in range(rng.randint(1, 4))]
        n = encode_subscribe(buf, 0, rng.randint(1, 65535), subscriptions)
    elif kind == 9:
        n = encode_suback(
            buf, 0, rng.randint(1, 65535), [rng.choice((0, 1, 2, 0x80)) for _ in range(rng.randint(1, 5))]
        )
    elif kind == 10:
        n = encode_unsubscribe(buf, 0, rng.randint(1, 65535), [_filter(rng) for _ in range(rng.randint(1, 4))])
    else:
        n = rng.choice((encode_pingreq, encode_pingresp, encode_disconnect))(buf, 0)
    return bytes(buf[:n])


# ---- mutations ----------------------------------------------------------------------


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        op = rng.randrange(10)
        i = rng.randrange(len(data)) if data else 0
        if op == 0 and data:  # flip one bit
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:  # any byte value
            data[i] = rng.randrange(256)
        elif op == 2 and data:  # an interesting byte value
            data[i] = rng.choice((0x00, 0x7F, 0x80, 0xFF, 0x23, 0x2B, 0x2F, 0xC0, 0xED, 0xF4, 0xF5))
        elif op == 3:  # insert bytes
            data[i:i] = rng.randbytes(rng.randint(1, 4))
        elif op == 4 and data:  # delete bytes
            del data[i : i + rng.randint(1, 4)]
        elif op == 5:  # truncate
            del data[rng.randint(0, len(data)) :]
        elif op == 6 and len(data) > 1:  # a new remaining length, up to the largest, some non-minimal or too long
            header_end = 1
            while header_end < len(data) and header_end < 5 and data[header_end] & 0x80:
                header_end += 1
            value = rng.choice((0, 1, 2, 127, 128, 16383, 268435455, rng.randint(0, 300), rng.randint(0, 268435455)))
            field = _varint(value)
            if rng.random() < 0.1:
                field = bytes(b | 0x80 for b in field) + b"\x00"  # one byte longer than needed
            if rng.random() < 0.05:
                field = b"\xff\xff\xff\xff\x7f"  # five bytes
            data[1 : header_end + 1] = field
        elif op == 7 and len(data) > 3:  # a 2-byte length field somewhere claims something else
            j = rng.randrange(len(data) - 1)
            data[j : j + 2] = struct.pack(">H", rng.choice((0, 1, 0xFFFF, rng.randint(0, 300))))
        elif op == 8 and data:  # another type or flags in the first byte
            data[0] = rng.choice(
                (rng.randrange(256), (data[0] & 0xF0) | rng.randrange(16), (rng.randrange(16) << 4) | (data[0] & 15))
            )
        elif op == 9 and data:  # repeat a region
            j = rng.randint(i, len(data))
            data[j:j] = data[i:j]
    return bytes(data)


def random_bytes(rng):
    data = bytearray(rng.randbytes(rng.randint(0, 48)))
    if data and rng.random() < 0.7:
        data[0] = rng.choice(
            (0x10, 0x20, 0x30, 0x32, 0x34, 0x3B, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0, 0xC0, 0xD0, 0xE0)
        )
        if len(data) > 1 and rng.random() < 0.7:
            data[1] = min(data[1], len(data) - 2) if len(data) > 2 else 0
    return bytes(data)


def fuzz_case(rng):
    roll = rng.random()
    if roll < 0.25:
        return random_bytes(rng)
    if roll < 0.75:
        return mutate(rng, valid_packet(rng))
    packets = [valid_packet(rng) for _ in range(rng.randint(2, 5))]
    k = rng.randrange(len(packets))
    packets[k] = mutate(rng, packets[k])
    return b"".join(packets)


# ---- what the decoder must do with any bytes -----------------------------------------


class Unexpected(AssertionError):
    pass


def _field_bytes(buf, start, length):
    return None if length < 0 else bytes(buf[start : start + length])


def reencode(buf, p):
    """The packet p decoded from buf, encoded again by our encoders."""
    out = bytearray(p.length + 8)
    t = p.type
    if t == PUBLISH:
        topic = _field_bytes(buf, p.topic_start, p.topic_length)
        payload = _field_bytes(buf, p.payload_start, p.payload_length)
        n = encode_publish(out, 0, topic, payload, p.qos, p.retain, p.dup, p.packet_id)
    elif t in _ACKS:
        n = encode_ack(out, 0, t, p.packet_id)
    elif t == CONNECT:
        n = encode_connect(
            out, 0, _field_bytes(buf, p.client_id_start, p.client_id_length), p.keepalive, p.clean_session,
            _field_bytes(buf, p.username_start, p.username_length),
            _field_bytes(buf, p.password_start, p.password_length),
            _field_bytes(buf, p.will_topic_start, p.will_topic_length),
            _field_bytes(buf, p.will_payload_start, p.will_payload_length), p.will_qos, p.will_retain,
        )  # fmt: skip
    elif t == CONNACK:
        n = encode_connack(out, 0, p.session_present, p.return_code)
    elif t == SUBSCRIBE:
        n = encode_subscribe(out, 0, p.packet_id, list(iter_subscriptions(buf, p)))
    elif t == SUBACK:
        n = encode_suback(out, 0, p.packet_id, list(buf[p.codes_start : p.codes_start + p.codes_length]))
    elif t == UNSUBSCRIBE:
        n = encode_unsubscribe(out, 0, p.packet_id, list(iter_filters(buf, p)))
    else:
        n = {PINGREQ: encode_pingreq, PINGRESP: encode_pingresp, DISCONNECT: encode_disconnect}[t](out, 0)
    return bytes(out[:n])


def consume(buf, end, packet, check=True):
    """Decodes buf[:end] packet after packet. Returns the outcome: the lengths
    decoded and how it stopped ("P:<message>" or "-N")."""
    start = 0
    lengths = []
    while True:
        try:
            n = decode(buf, start, end, packet)
        except ProtocolError as e:
            return lengths, "P:" + str(e)
        except Exception as e:
            raise Unexpected("%s: %s after %r" % (type(e).__name__, e, lengths)) from e
        if n < 0:
            if check:
                if decode_header(buf, start, end, packet) > 0:
                    assert -n == start + packet.length - end, (start, end, n, packet.length)
                else:
                    assert 1 <= -n <= 2, n
            return lengths, "%d" % n
        if check:
            assert n == packet.length == packet.header_length + packet.remaining_length and start + n <= end
            canonical = packet.header_length == 1 + remaining_length_size(packet.remaining_length)
            try:
                again = reencode(buf, packet)
            except ValueError as e:
                raise Unexpected("decoded %r but our encoder refuses it: %s" % (packet, e)) from e
            if canonical:
                assert again == bytes(buf[start : start + n]), (again, bytes(buf[start : start + n]))
        lengths.append(n)
        start += n


def consume_in_reads(data, rng, packet):
    """The same bytes arriving in reads of random sizes."""
    buf = bytearray(len(data))
    have = 0
    start = 0
    lengths = []
    while True:
        try:
            n = decode(buf, start, have, packet)
        except ProtocolError as e:
            return lengths, "P:" + str(e)
        if n > 0:
            lengths.append(n)
            start += n
        elif have == len(data):
            return lengths, "%d" % n
        else:
            more = min(len(data) - have, rng.choice((1, 1, 2, 3, 7, 64)))
            buf[have : have + more] = data[have : have + more]
            have += more


class _Watchdog:
    def __init__(self, seconds):
        self.seconds = seconds

    def _fire(self, signum, frame):
        raise Unexpected("no progress in %d s: the decoder hangs" % self.seconds)

    def __enter__(self):
        self.previous = signal.signal(signal.SIGALRM, self._fire)
        signal.alarm(self.seconds)
        return self

    def pet(self):
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


def test_fuzz_only_protocol_errors_come_out(tmp_path):
    rng = random.Random(FUZZ_SEED)
    packet = BrokerPacket()
    stats = {"packets": 0, "protocol_errors": 0, "incomplete": 0}
    corpus = []  # the share also run on MicroPython, with the outcome seen here
    started = time.monotonic()
    with _Watchdog(WATCHDOG_S) as watchdog:
        for case in range(FUZZ_CASES):
            if case % 1000 == 0:
                watchdog.pet()
            data = fuzz_case(rng)
            try:
                lengths, stop = consume(bytearray(data), len(data), packet)
                if case % 8 == 0:
                    again = consume_in_reads(data, rng, packet)
                    assert again == (lengths, stop), (again, (lengths, stop))
            except AssertionError as e:
                raise AssertionError("FUZZ_SEED=%d case %d, bytes %s: %s" % (FUZZ_SEED, case, data.hex(), e)) from e
            stats["packets"] += len(lengths)
            stats["protocol_errors" if stop.startswith("P:") else "incomplete"] += 1
            if case % MICROPYTHON_SHARE == 0 and len(corpus) < MICROPYTHON_MAX:
                corpus.append((data, lengths, stop))
    elapsed = time.monotonic() - started
    print("fuzz: %d cases, seed %d, %.1f s: %r" % (FUZZ_CASES, FUZZ_SEED, elapsed, stats))
    # The corpus is not all refused at the first byte: it reaches every part of the decoder.
    assert stats["packets"] > FUZZ_CASES // 4 and stats["protocol_errors"] > FUZZ_CASES // 4
    _same_outcomes_on_micropython(corpus, tmp_path)


# On the Unix port: read the corpus (records of 4-byte length + bytes), decode
# each case as consume() does, print one outcome line per case.
_MICROPYTHON_DECODER = """
import sys
from mqtt.broker_codec import BrokerPacket, decode
from mqtt.packet import ProtocolError

def main(path):
    with open(path, "rb") as f:
        corpus = f.read()
    packet = BrokerPacket()
    i = 0
    while i < len(corpus):
        size = int.from_bytes(corpus[i : i + 4], "big")
        buf = bytearray(corpus[i + 4 : i + 4 + size])
        i += 4 + size
        start = 0
        lengths = []
        while True:
            try:
                n = decode(buf, start, size, packet)
            except ProtocolError as e:
                stop = "P:" + str(e)
                break
            except Exception as e:
                stop = "UNEXPECTED %s: %s" % (type(e).__name__, e)
                break
            if n < 0:
                stop = "%d" % n
                break
            lengths.append("%d" % n)
            start += n
        print(",".join(lengths) + "|" + stop)

main(sys.argv[1])
"""


def _same_outcomes_on_micropython(corpus, tmp_path):
    script = tmp_path / "fuzz_decode.py"
    script.write_text(_MICROPYTHON_DECODER)
    corpus_path = tmp_path / "corpus.bin"
    with open(corpus_path, "wb") as f:
        for data, _, _ in corpus:
            f.write(len(data).to_bytes(4, "big") + data)
    result = micropython.run([str(script), str(corpus_path)], timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert len(lines) == len(corpus) + 1 and lines[-1] == "", (len(lines), len(corpus))
    for (data, lengths, stop), line in zip(corpus, lines, strict=False):
        expected = ",".join("%d" % n for n in lengths) + "|" + stop
        assert line == expected, "bytes %s: MicroPython %r, CPython %r" % (data.hex(), line, expected)


# ---- length fields size nothing ---------------------------------------------------


def test_decoder_allocates_nothing_sized_by_a_length_field():
    # Headers claiming up to 268435455 bytes, and 2-byte fields claiming 65535,
    # with a few bytes behind them: the decoder reports how many bytes it
    # needs, or refuses, and allocates no more than an error message.
    rng = random.Random(FUZZ_SEED + 1)
    cases = []
    for first in (0x10, 0x30, 0x32, 0x82, 0x90, 0xA2, 0x40, 0x62, 0xC0):
        for remaining in (268435455, 2097152, 65535, 300):
            cases.append(bytes([first]) + _varint(remaining) + rng.randbytes(rng.randint(0, 40)))
    cases += [fuzz_case(rng) for _ in range(3000)]
    packet = BrokerPacket()
    tracemalloc.start()
    try:
        worst = 0
        for data in cases:
            buf = bytearray(data)
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            try:
                decode(buf, 0, len(buf), packet)
            except ProtocolError:
                pass
            worst = max(worst, tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    assert worst < 4096, "a decode allocated %d bytes" % worst


def test_a_huge_claim_is_answered_at_once_with_the_exact_shortfall():
    packet = BrokerPacket()
    header = bytearray(b"\x30\xff\xff\xff\x7f\x00\x01t")  # PUBLISH of 268435455 bytes, 3 of them here
    tracemalloc.start()
    try:
        assert decode(header, 0, len(header), packet) == -(268435455 - 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4096, "nothing the size of the claim is made: %d bytes allocated" % peak
    assert packet.length == 268435460


@pytest.mark.parametrize("first", [0x20, 0x40, 0x50, 0x62, 0x70, 0xB0, 0xC0, 0xD0, 0xE0])
def test_a_fixed_size_packet_claiming_more_is_refused_before_its_body(first):
    packet = BrokerPacket()
    with pytest.raises(ProtocolError, match="remaining length must be"):
        decode(bytearray([first, 0xFF, 0xFF, 0xFF, 0x7F]), 0, 5, packet)


def test_the_corpus_is_reproducible_from_its_seed():
    # A failure report's FUZZ_SEED and case number give back the same bytes.
    a = random.Random(5)
    b = random.Random(5)
    assert [fuzz_case(a) for _ in range(50)] == [fuzz_case(b) for _ in range(50)]
