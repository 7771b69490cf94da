# The session and the backoff across the tick wrap, sans-I/O: `now` starts
# just short of the point where ticks wrap (2**30 ms on a board, the 32-bit
# runtime and CPython's shim; 2**62 on the Unix port) and walks across it.
# Keepalive, the dead-link timer and QoS 1 resends fall due when they
# should: not early, not late, each once. A wait longer than ticks can
# measure (2**29 ms, 6.2 days on a board) is waited out in shorter steps.
from backoff import Backoff
from compat import ticks_add, ticks_diff
from mqtt.session import CONNECTED, KeepaliveTimeout, Session
from support import allocated_by
from test_session import feed, output  # the same byte helpers as the session tests

CONNACK_OK = bytes([0x20, 0x02, 0x00, 0x00])  # CONNACK, remaining 2, no session present, accepted
CONNACK_SESSION = bytes([0x20, 0x02, 0x01, 0x00])  # session present
PINGREQ = bytes([0xC0, 0x00])
PINGRESP = bytes([0xD0, 0x00])
TOPIC = b"house/kitchen/temperature"

LONGEST_TICKS_MS = (1 << 29) - 1  # the longest interval a board's ticks_add takes
WEEK_MS = 7 * 86400 * 1000  # longer than that


def before_wrap(ms):
    return ticks_add(0, -ms)


def later(start, ms):
    """ticks_add for any ms >= 0, in steps a board's ticks_add takes."""
    while ms > LONGEST_TICKS_MS:
        start = ticks_add(start, LONGEST_TICKS_MS)
        ms -= LONGEST_TICKS_MS
    return ticks_add(start, ms)


def connected_at(now, **kwargs):
    s = Session(b"node1", **kwargs)
    s.connect(now)
    output(s, now)
    feed(s, CONNACK_OK if kwargs.get("clean_session", True) else CONNACK_SESSION, now)
    assert s.state == CONNECTED
    return s


def publish_bytes(packet_id, dup, payload):
    body = bytes([0, len(TOPIC)]) + TOPIC + bytes([packet_id >> 8, packet_id & 0xFF]) + payload
    return bytes([0x32 | (0x08 if dup else 0), len(body)]) + body


def resent_ids(data):
    """Packet ids of the QoS 1 PUBLISHes in data (each as publish_bytes makes them)."""
    ids = []
    at = 0
    while at < len(data):
        assert data[at] & 0xF6 == 0x32, data  # a QoS 1 PUBLISH, DUP or not
        topic_end = at + 4 + len(TOPIC)
        ids.append((data[topic_end] << 8) | data[topic_end + 1])
        at += 2 + data[at + 1]
    return ids


# ---- keepalive -------------------------------------------------------------


def test_ping_due_at_keepalive_when_idle_across_the_wrap():
    t0 = before_wrap(4000)  # keepalive falls 6 s after the wrap
    s = connected_at(t0, keepalive_s=10)
    assert s.tick(ticks_add(t0, 3999)) == 6001  # at the wrap: the wait still counts from CONNACK
    assert s.tick(ticks_add(t0, 9999)) == 1
    assert s.out_count == 0
    assert s.tick(ticks_add(t0, 10000)) == 5000  # PINGREQ queued; the answer is due by 1.5 x keepalive
    assert output(s, ticks_add(t0, 10000)) == PINGREQ
    assert s.pings == 1


def test_pingresp_across_the_wrap_keeps_the_link_and_the_next_ping_is_a_keepalive_later():
    t0 = before_wrap(10020)
    s = connected_at(t0, keepalive_s=10)
    s.tick(ticks_add(t0, 10000))  # 20 ms before the wrap
    output(s, ticks_add(t0, 10000))
    feed(s, PINGRESP, ticks_add(t0, 10050))  # 30 ms after it
    s.tick(ticks_add(t0, 16000))  # 1.5 x keepalive since CONNACK, but the PINGRESP counts
    assert s.out_count == 0
    assert s.tick(ticks_add(t0, 19999)) == 1
    assert s.out_count == 0
    s.tick(ticks_add(t0, 20000))  # keepalive since the PINGREQ went out
    assert output(s, ticks_add(t0, 20000)) == PINGREQ
    assert s.pings == 2


def test_dead_link_found_at_one_and_a_half_keepalive_across_the_wrap():
    t0 = before_wrap(12000)  # PINGREQ 2 s before the wrap, dead 3 s after it
    s = connected_at(t0, keepalive_s=10)
    s.tick(ticks_add(t0, 10000))
    assert output(s, ticks_add(t0, 10000)) == PINGREQ
    assert s.tick(ticks_add(t0, 12000)) == 3000  # at the wrap
    assert s.tick(ticks_add(t0, 14999)) == 1
    try:
        s.tick(ticks_add(t0, 15000))
    except KeepaliveTimeout:
        return
    raise AssertionError("dead link not found 1.5 x keepalive after the last packet")


# ---- QoS 1 resends ---------------------------------------------------------


def test_qos1_each_resent_once_when_due_across_the_wrap_not_early_not_in_a_burst():
    # Three messages 1 s apart, due 500 ms before, 500 ms after and 1.5 s
    # after the wrap. Every millisecond is ticked: each goes out again at
    # exactly retry_ms after it was sent, alone, and not again before the
    # next retry_ms has passed.
    t0 = before_wrap(5500)
    s = connected_at(t0, keepalive_s=0, retry_ms=5000)
    for i in range(3):
        now = ticks_add(t0, 1000 * i)
        s.publish(TOPIC, b"21.5", 1, False, now)
        output(s, now)
    resends = []
    for ms in range(1, 10001):
        now = ticks_add(t0, ms)
        s.tick(now)
        if s.out_count:
            resends.append((ms, resent_ids(output(s, now))))
    assert resends == [(5000, [1]), (6000, [2]), (7000, [3]), (10000, [1])], resends
    assert s.resent == 4


def test_qos1_resend_wait_lands_on_the_due_tick_across_the_wrap():
    # A loop that sleeps for what tick() returns wakes exactly when a resend
    # is due, so it neither spins nor sends late.
    t0 = before_wrap(3000)
    s = connected_at(t0, keepalive_s=0, retry_ms=5000)
    s.publish(TOPIC, b"21.5", 1, False, t0)
    output(s, t0)
    wait = s.tick(t0)
    assert wait == 5000
    now = ticks_add(t0, wait)
    assert s.tick(now) == 5000  # resent, and the next one is a retry_ms away
    assert output(s, now) == publish_bytes(1, True, b"21.5")


def test_qos1_retry_longer_than_ticks_can_measure_is_waited_out_in_steps():
    # A retry_ms of a week is more than a board's ticks_add takes and
    # ticks_diff measures: tick() asks to be called again within 2**29 ms,
    # and the message goes out again after exactly a week, once.
    t0 = before_wrap(1000)
    s = connected_at(t0, keepalive_s=0, retry_ms=WEEK_MS)
    s.publish(TOPIC, b"21.5", 1, False, t0)
    output(s, t0)
    now, elapsed = t0, 0
    for _ in range(4):  # a week is two full steps and a bit
        wait = s.tick(now)
        if s.out_count:
            break
        assert 0 < wait <= LONGEST_TICKS_MS, wait
        assert elapsed + wait <= WEEK_MS, (elapsed, wait)  # never past the due time
        now = ticks_add(now, wait)
        elapsed += wait
    assert elapsed == WEEK_MS, elapsed
    assert output(s, now) == publish_bytes(1, True, b"21.5")
    assert s.resent == 1
    assert 0 < s.tick(now) <= LONGEST_TICKS_MS  # the next week starts: nothing more now
    assert s.out_count == 0


def test_qos1_resend_timer_restarts_after_an_outage_longer_than_ticks_can_measure():
    # Published, then the link is down for a week (the session is not ticked
    # while disconnected). After CONNACK the message is resent with DUP and,
    # still unacknowledged, again retry_ms later: the timer kept from before
    # the outage must not read as days in the future.
    t0 = before_wrap(2000)
    s = connected_at(t0, keepalive_s=0, clean_session=False, retry_ms=5000)
    s.publish(TOPIC, b"21.5", 1, False, t0)
    output(s, t0)
    s.connection_lost()
    back = later(t0, WEEK_MS)
    s.connect(back)
    output(s, back)
    feed(s, CONNACK_SESSION, back)
    assert output(s, back) == publish_bytes(1, True, b"21.5")
    assert s.tick(ticks_add(back, 4999)) == 1
    assert s.out_count == 0
    s.tick(ticks_add(back, 5000))
    assert output(s, ticks_add(back, 5000)) == publish_bytes(1, True, b"21.5")
    assert s.resent == 2


_PUBACK = bytearray([0x40, 0x02, 0x00, 0x00])  # PUBACK, remaining 2, packet id set per round


def _resend_cycle(s, t0, count):
    # Publish, resend after retry_ms, PUBACK: each round 4 ms later, across the wrap.
    puback = _PUBACK
    now = t0
    for _ in range(count):
        packet_id = s.publish(TOPIC, b"21.5", 1, False, now)
        s.sent(now)
        now = ticks_add(now, 2)
        s.tick(now)  # due: resent
        s.sent(now)
        puback[2] = packet_id >> 8
        puback[3] = packet_id & 0xFF
        s.receive(puback, 0, 4, now)
        now = ticks_add(now, 2)


def test_resends_across_the_wrap_allocate_nothing():
    t0 = before_wrap(1000)
    s = connected_at(t0, keepalive_s=0, retry_ms=2)
    _resend_cycle(s, t0, 5)  # warm up
    resent = s.resent
    assert allocated_by(_resend_cycle, s, before_wrap(1000), 500) == 0
    assert s.resent == resent + 500
    assert s.inflight_count() == 0


# ---- backoff ---------------------------------------------------------------


def test_backoff_longer_than_ticks_can_measure_is_cut_to_the_longest_tick_interval():
    # Every caller adds the wait to a tick (reconnect, Wi-Fi, NTP): a cap of a
    # week would raise OverflowError in ticks_add on a board once reached.
    b = Backoff(1000, WEEK_MS)
    start = before_wrap(100)
    longest = 0
    for _ in range(40):  # 1 s doubles past a week within 20 steps
        wait = b.next_ms()
        assert 0 < wait <= LONGEST_TICKS_MS, wait
        assert ticks_diff(ticks_add(start, wait), start) == wait
        longest = wait if wait > longest else longest
    assert longest > LONGEST_TICKS_MS // 2  # the steps did reach the cap


def test_backoff_wait_scheduled_before_the_wrap_falls_due_after_it():
    # How the client and the Wi-Fi use it: due = ticks_add(now, next_ms()),
    # then ticks_diff(due, now) until it is <= 0.
    b = Backoff(500, 4000)
    for step in (500, 1000, 2000, 4000):
        start = before_wrap(step // 4)
        wait = b.next_ms()
        due = ticks_add(start, wait)
        assert step // 2 <= wait <= step, (step, wait)
        assert ticks_diff(due, ticks_add(start, wait - 1)) == 1  # not yet, one ms before
        assert ticks_diff(due, ticks_add(start, wait)) == 0  # due
