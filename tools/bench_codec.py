# PUBLISH encode rate: mqtt.packet.encode_publish into a preallocated buffer
# against a straightforward encoder that concatenates bytes, as
# umqtt.simple's publish builds its header (measured in the same run).
#
#   MICROPYPATH=lib .venv/bin/micropython tools/bench_codec.py
#   PYTHONPATH=lib .venv/bin/python tools/bench_codec.py     (for comparison)
#
# Prints the rate of each (median of 3 runs), the ratio, and the heap bytes
# each allocates per call (0 on CPython, which reports no heap).
import gc
import struct

from mqtt.packet import encode_publish

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(end, start):
        return end - start


try:
    from gc import mem_alloc
except ImportError:

    def mem_alloc():
        return 0


CALLS = 20000
RUNS = 3
TOPIC = b"house/kitchen/temperature"
PAYLOAD = b"21.5 degrees Celsius"  # 20 bytes, as DESIGN.md's figures
TX = bytearray(128)


def publish_concatenated(topic, msg, retain=False, qos=0, packet_id=0):
    # umqtt.simple 1.3.4's header code, with its separate writes joined into one bytes.
    pkt = bytearray(b"\x30\0\0\0")
    pkt[0] |= qos << 1 | retain
    sz = 2 + len(topic) + len(msg)
    if qos > 0:
        sz += 2
    i = 1
    while sz > 0x7F:
        pkt[i] = (sz & 0x7F) | 0x80
        sz >>= 7
        i += 1
    pkt[i] = sz
    out = bytes(pkt[: i + 1]) + struct.pack("!H", len(topic)) + topic
    if qos > 0:
        out += struct.pack("!H", packet_id)
    return out + msg


def run_ours(qos, calls=CALLS):
    i = 0
    while i < calls:
        encode_publish(TX, 0, TOPIC, PAYLOAD, qos, False, False, 1)
        i += 1


def run_concatenated(qos, calls=CALLS):
    i = 0
    while i < calls:
        publish_concatenated(TOPIC, PAYLOAD, False, qos, 1)
        i += 1


def rate(fn, qos):
    samples = []
    for _ in range(RUNS):
        gc.collect()
        start = ticks_us()
        fn(qos)
        samples.append(CALLS * 1000000 / max(1, ticks_diff(ticks_us(), start)))
    samples.sort()
    return samples[RUNS // 2]


def bytes_per_call(fn, qos, calls=200):
    # Few calls: with the collector off, the concatenating encoder fills the heap.
    gc.collect()
    gc.disable()
    try:
        before = mem_alloc()
        fn(qos, calls)
        return (mem_alloc() - before) / calls
    finally:
        gc.enable()


def main():
    for qos in (0, 1):
        n = encode_publish(TX, 0, TOPIC, PAYLOAD, qos, False, False, 1)
        if bytes(TX[:n]) != publish_concatenated(TOPIC, PAYLOAD, False, qos, 1):
            raise SystemExit("the two encoders disagree at QoS %d" % qos)
        ours = rate(run_ours, qos)
        theirs = rate(run_concatenated, qos)
        print(
            "PUBLISH QoS %d, %d-byte packet: encode_publish %.0f/s (%.0f B/call), concatenating %.0f/s (%.0f B/call),"
            " ratio %.2f" % (qos, n, ours, bytes_per_call(run_ours, qos), theirs,
                             bytes_per_call(run_concatenated, qos), ours / theirs)
        )  # fmt: skip


main()
