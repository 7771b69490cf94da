# The JSON payload mode: value plus the UTC time the reading was taken.
import time

from compat import ticks_add, ticks_ms
from node.timestamp import UNIX_2024, format_json, now_s
from support import allocated_by, heap_locked


def _epoch(year, month, day, hour, minute, second):
    fields = (year, month, day, hour, minute, second, 0, 0, 0)
    try:
        from calendar import timegm  # CPython: mktime would apply the local zone
    except ImportError:
        return time.mktime(fields)  # MicroPython: mktime is UTC
    return timegm(fields)


def test_json_with_time():
    buf = bytearray(64)
    taken = _epoch(2026, 11, 23, 8, 0, 5) - UNIX_2024
    n = format_json(buf, 2150, 2, taken)
    assert bytes(buf[:n]) == b'{"v":21.50,"t":"2026-11-23T08:00:05Z"}'


def test_json_negative_value_and_no_time():
    buf = bytearray(64)
    n = format_json(buf, -5, 1, 0)
    assert bytes(buf[:n]) == b'{"v":-0.5}'


def test_dates_agree_with_gmtime_from_2024_to_2100():
    # Every 7 days and 13 hours: all weekdays, hours, months and leap days come round.
    buf = bytearray(64)
    taken = 1
    while taken < _epoch(2100, 3, 1, 0, 0, 0) - UNIX_2024:
        n = format_json(buf, 0, 0, taken)
        fields = time.gmtime(taken + UNIX_2024)[:6]
        assert bytes(buf[12:n - 2]) == b"%04d-%02d-%02dT%02d:%02d:%02dZ" % fields, (taken, bytes(buf[:n]))
        taken += 7 * 86400 + 13 * 3600 + 61


def test_leap_days():
    buf = bytearray(64)
    for year, month, day in ((2024, 2, 29), (2028, 2, 29), (2100, 3, 1), (2400, 2, 29)):
        n = format_json(buf, 0, 0, _epoch(year, month, day, 23, 59, 59) - UNIX_2024)
        assert bytes(buf[12:n - 2]) == b"%04d-%02d-%02dT23:59:59Z" % (year, month, day)


def test_host_clock_counts_as_set():
    assert abs(now_s() + UNIX_2024 - time.time()) <= 2


def test_now_and_format_allocate_nothing():
    buf = bytearray(64)

    def readings():
        for i in range(100):
            format_json(buf, 2150 + i, 2, now_s())

    readings()
    assert allocated_by(readings) == 0
    heap_locked(readings)


def test_set_now_sets_the_clock_and_says_how_far_it_moved():
    from node import timestamp

    saved = (timestamp._set, timestamp._anchor_s, timestamp._anchor_ticks)
    try:
        target = _epoch(2031, 5, 31, 12, 0, 0)
        moved = timestamp.set_now(target)
        assert abs(moved - (target - time.time())) <= 2
        assert 0 <= now_s() - (target - UNIX_2024) <= 1
        assert timestamp.set_now(target + 10) in (10, 9)
        # An answer from before 2024 (a server that lost its clock) does not count as set.
        timestamp.set_now(_epoch(2001, 1, 1, 0, 0, 0))
        assert now_s() == 0
    finally:
        timestamp._set, timestamp._anchor_s, timestamp._anchor_ticks = saved


def test_clock_keeps_counting_past_the_reanchor_point():
    from node import timestamp

    saved = (timestamp._set, timestamp._anchor_s, timestamp._anchor_ticks)
    try:
        # As if the anchor were taken 5 days ago: past the re-anchor point (3.1 days).
        timestamp._set = True
        timestamp._anchor_s = 1000
        timestamp._anchor_ticks = ticks_add(ticks_ms(), -5 * 86400 * 1000)
        first = now_s()
        assert first - 1000 in (5 * 86400, 5 * 86400 + 1)
        assert timestamp._anchor_s > 1000  # moved forward, the time unchanged
        assert now_s() - first in (0, 1)
    finally:
        timestamp._set, timestamp._anchor_s, timestamp._anchor_ticks = saved


def test_sync_ntp_failure_is_logged_and_leaves_the_clock():
    from node import timestamp

    def resolve(host, timeout_ms):
        raise OSError("resolving %r: no answer within %d ms" % (host, timeout_ms))

    logs = []
    before = now_s()
    assert timestamp.sync_ntp("ntp.example", 123, resolve, 1000, logs.append) is False
    assert now_s() - before in (0, 1)
    assert logs == ["ntp: resolving 'ntp.example': no answer within 500 ms"], logs
