# The node's parts with no broker: fixed-point formatting and the offline
# ring (the board-file checks are in test_config, Wi-Fi in test_wifi, Home
# Assistant discovery in test_discovery). Runs on CPython, the Unix port and
# the 32-bit runtime.
import sys

import support
from node.fixed import format_fixed
from node.ring import Ring


def test_the_node_does_not_load_the_broker_half_of_the_codec_nor_the_clock():
    # mqtt.broker_codec is heap a board would spend on code it never runs.
    if not support.on_micropython():
        support.skip("one process runs every test on CPython: modules are already loaded")
    import node.node  # noqa: F401 - loads the node and the client, as firmware/main.py does

    assert "mqtt.client" in sys.modules
    assert "mqtt.broker_codec" not in sys.modules
    # Nor the clock: only a board with JSON payloads loads it (node.build).
    assert "node.timestamp" not in sys.modules


# ---- fixed-point numbers -------------------------------------------------

FIXED_CASES = (
    # value, decimals, text
    (0, 0, b"0"),
    (0, 2, b"0.00"),
    (5, 2, b"0.05"),  # never ".05": at least one digit before the point
    (-5, 2, b"-0.05"),
    (50, 2, b"0.50"),
    (-50, 1, b"-5.0"),
    (9, 1, b"0.9"),
    (10, 1, b"1.0"),
    (100, 2, b"1.00"),
    (2150, 2, b"21.50"),
    (-2150, 2, b"-21.50"),
    (10132, 1, b"1013.2"),
    (99999, 3, b"99.999"),
    (-1, 0, b"-1"),
    (7, 0, b"7"),
    (123456789, 0, b"123456789"),
    (-987654321, 4, b"-98765.4321"),
    (1 << 40, 0, b"1099511627776"),
    (10**17, 2, b"1000000000000000.00"),
)


def test_format_fixed_writes_plain_text():
    buf = bytearray(24)
    for value, decimals, text in FIXED_CASES:
        n = format_fixed(buf, 0, value, decimals)
        assert bytes(buf[:n]) == text, (value, decimals, bytes(buf[:n]), text)


def test_format_fixed_writes_at_offset_and_touches_nothing_else():
    buf = bytearray(b"xxxxxxxxxxxxxxxx")
    n = format_fixed(buf, 5, -2150, 2)
    assert n == 6
    assert bytes(buf) == b"xxxxx-21.50xxxxx"


def test_format_fixed_exact_fit_is_enough():
    buf = bytearray(5)
    assert format_fixed(buf, 0, -5, 2) == 5
    assert bytes(buf) == b"-0.05"
    buf = bytearray(3)
    assert format_fixed(buf, 0, 999, 0) == 3
    assert bytes(buf) == b"999"


def _too_small(buf, offset, value, decimals):
    try:
        format_fixed(buf, offset, value, decimals)
    except ValueError as e:
        assert "%d bytes" % len(buf) in str(e), str(e)
        return
    raise AssertionError("no ValueError for %r in %d bytes at %d" % (value, len(buf), offset))


def test_format_fixed_buffer_too_small_raises_valueerror():
    _too_small(bytearray(4), 0, 12345, 0)
    _too_small(bytearray(4), 0, -5, 2)  # "-0.05" is 5 bytes
    _too_small(bytearray(4), 0, 5, 4)  # "0.0005"
    _too_small(bytearray(8), 4, 12345, 0)  # fits the buffer, not what is left of it
    _too_small(bytearray(0), 0, 0, 0)


def _format_many(buf):
    total = 0
    for value in range(-3000, 3000, 7):
        total += format_fixed(buf, 0, value, 2)
        total += format_fixed(buf, 0, value, 0)
    return total


def test_format_fixed_allocates_nothing():
    buf = bytearray(24)
    _format_many(buf)  # warm-up
    assert support.allocated_by(_format_many, buf) == 0
    assert support.heap_locked(_format_many, buf) > 0


# ---- the offline ring ----------------------------------------------------


def drained(ring):
    out = []
    for _ in range(ring.capacity + 1):
        i = ring.oldest()
        if i < 0:
            break
        out.append((ring.channel[i], ring.value[i], ring.taken[i]))
        ring.pop()
    assert ring.count == 0
    return out


def test_ring_keeps_order():
    ring = Ring(4)
    ring.push(0, 2150)
    ring.push(1, 450, 1700000000)
    ring.push(0, 2151)
    assert ring.count == 3
    assert ring.dropped == 0
    assert drained(ring) == [(0, 2150, 0), (1, 450, 1700000000), (0, 2151, 0)]


def test_ring_wraps_around():
    ring = Ring(4)
    for v in (1, 2, 3):
        ring.push(0, v)
    ring.pop()
    ring.pop()
    for v in (4, 5, 6):  # storage index wraps past the end
        ring.push(1, v)
    assert ring.count == 4
    assert [v for _, v, _ in drained(ring)] == [3, 4, 5, 6]
    assert ring.dropped == 0
    for round_ in range(10):  # many laps keep order
        ring.push(0, round_)
        ring.push(0, round_ + 100)
        assert [v for _, v, _ in drained(ring)] == [round_, round_ + 100]


def test_ring_full_drops_oldest_and_counts():
    ring = Ring(3)
    for v in range(1, 8):
        ring.push(v % 2, v)
    assert ring.count == 3
    assert ring.dropped == 4
    assert drained(ring) == [(1, 5, 0), (0, 6, 0), (1, 7, 0)]
    ring.push(0, 8)  # dropping does not survive a drain as a bad state
    assert drained(ring) == [(0, 8, 0)]
    assert ring.dropped == 4


def test_ring_pop_on_empty_does_nothing():
    ring = Ring(2)
    assert ring.oldest() == -1
    ring.pop()
    assert ring.count == 0
    assert ring.oldest() == -1
    ring.push(0, 1)
    ring.pop()
    ring.pop()
    assert ring.count == 0
    ring.push(0, 2)
    assert drained(ring) == [(0, 2, 0)]


def test_ring_capacity_must_be_positive():
    for capacity in (0, -1):
        try:
            Ring(capacity)
        except ValueError as e:
            assert repr(capacity) in str(e)
            continue
        raise AssertionError("Ring(%d) accepted" % capacity)


def _cycle_ring(ring):
    for v in range(200):
        ring.push(v & 3, v)
        if v & 1:
            ring.pop()
    while ring.count:
        ring.pop()


def test_ring_push_and_pop_allocate_nothing():
    ring = Ring(16)
    _cycle_ring(ring)
    assert support.allocated_by(_cycle_ring, ring) == 0
    support.heap_locked(_cycle_ring, ring)


# ---- marks in ticks ----------------------------------------------------------


def test_a_mark_a_week_ago_is_not_recent():
    # Home Assistant's announce gap and the forced-readings limit: on a board
    # (ticks wrap at 2**30 ms) ticks_diff reads a mark 6.2 days or more ago
    # as negative, which is long ago too, not "less than the gap".
    from compat import ticks_add, ticks_ms
    from node.node import recent

    now = ticks_ms()
    assert recent(now, now, 5000)
    assert not recent(ticks_add(now, 5000), now, 5000)
    assert not recent(now, None, 5000)
    week_later = ticks_add(ticks_add(now, 4 * 86400000), 3 * 86400000)  # ticks_add takes under 6.2 days at once
    assert not recent(week_later, now, 60000)
