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


def test_set_now_moves_the_clock_by_an_offset():
    from node import timestamp

    saved = timestamp._offset_s
    try:
        target = _epoch(2031, 5, 31, 12, 0, 0)
        offset = timestamp.set_now(target)
        assert offset == target - int(time.time())
        assert 0 <= now_s() - target <= 1
        # A clock that reads before 2024 (a board just powered up) is "not set".
        timestamp.set_now(_epoch(2001, 1, 1, 0, 0, 0))
        assert now_s() == 0
    finally:
        timestamp._offset_s = saved


def test_sync_ntp_failure_is_logged_and_leaves_the_clock():
    from node import timestamp

    def resolve(host, timeout_ms):
        raise OSError("resolving %r: no answer within %d ms" % (host, timeout_ms))

    logs = []
    before = timestamp._offset_s
    assert timestamp.sync_ntp("ntp.example", 123, resolve, 1000, logs.append) is False
    assert timestamp._offset_s == before
    assert logs == ["ntp: resolving 'ntp.example': no answer within 500 ms"], logs
