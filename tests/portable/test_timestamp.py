# The JSON payload mode: value plus the UTC time the reading was taken.
import time

from node.timestamp import format_json, now_s


def _epoch(year, month, day, hour, minute, second):
    fields = (year, month, day, hour, minute, second, 0, 0, 0)
    try:
        from calendar import timegm  # CPython: mktime would apply the local zone
    except ImportError:
        return time.mktime(fields)  # MicroPython: mktime is UTC
    return timegm(fields)


def test_json_with_time():
    buf = bytearray(64)
    taken = _epoch(2026, 11, 23, 8, 0, 5)
    n = format_json(buf, 2150, 2, taken)
    assert bytes(buf[:n]) == b'{"v":21.50,"t":"2026-11-23T08:00:05Z"}'


def test_json_negative_value_and_no_time():
    buf = bytearray(64)
    n = format_json(buf, -5, 1, 0)
    assert bytes(buf[:n]) == b'{"v":-0.5}'


def test_host_clock_counts_as_set():
    assert now_s() > 0
    assert time.gmtime(now_s())[0] >= 2024
