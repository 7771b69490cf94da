# The JSON payload mode: value plus the UTC time the reading was taken.
# The expected dates come from this file (fixed strings, and a calendar walk
# written apart from timestamp.py's), never from the runtime's time module:
# a board's mktime / gmtime are a day late from 2100-03-01 and wrap before
# 2400, and the clock of the machine running the tests may be anything.
from compat import ticks_add, ticks_diff, ticks_ms
from node.timestamp import UNIX_2024, format_json, now_s
from support import allocated_by, heap_locked

# (seconds since 2024-01-01T00:00:00Z, the date they are), from CPython's
# calendar.timegm (proleptic Gregorian): the leap days of 2024 and 2104, none
# in 2100, 2200 or 2300, one in 2400; and the last second a 32-bit board
# holds as a small int (2**30 - 1).
PINNED_DATES = (
    (1, b"2024-01-01T00:00:01Z"),
    (5140800, b"2024-02-29T12:00:00Z"),
    (91870320, b"2026-11-29T07:32:00Z"),
    ((1 << 30) - 1, b"2058-01-09T13:37:03Z"),
    (2398377599, b"2099-12-31T23:59:59Z"),
    (2403475199, b"2100-02-28T23:59:59Z"),
    (2403475200, b"2100-03-01T00:00:00Z"),
    (2429913600, b"2101-01-01T00:00:00Z"),
    (2529642600, b"2104-02-29T06:30:00Z"),
    (5559148800, b"2200-03-01T00:00:00Z"),
    (8714822399, b"2300-02-28T23:59:59Z"),
    (11865398399, b"2399-12-31T23:59:59Z"),
    (11870582399, b"2400-02-29T23:59:59Z"),
    (11870582400, b"2400-03-01T00:00:00Z"),
    (11897020800, b"2401-01-01T00:00:00Z"),
)


def _time_of(buf, taken):
    n = format_json(buf, 0, 0, taken)
    return bytes(buf[12 : n - 2])  # between {"v":0,"t":" and "}


def test_json_with_time():
    buf = bytearray(64)
    n = format_json(buf, 2150, 2, 91870325)
    assert bytes(buf[:n]) == b'{"v":21.50,"t":"2026-11-29T07:32:05Z"}'


def test_json_negative_value_and_no_time():
    buf = bytearray(64)
    n = format_json(buf, -5, 1, 0)
    assert bytes(buf[:n]) == b'{"v":-0.5}'


def test_dates_past_2100_are_pinned():
    buf = bytearray(64)
    for taken, expected in PINNED_DATES:
        assert _time_of(buf, taken) == expected, (taken, _time_of(buf, taken), expected)


def _days_in_month(year, month):
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)  # Gregorian rule
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


class _Calendar:
    """A date and time that walks forward field by field: slow, and nothing
    like timestamp.py's day arithmetic, so the two check each other."""

    def __init__(self):
        self.fields = [2024, 1, 1, 0, 0, 0]  # year, month, day, hour, minute, second

    def advance(self, days, hours, minutes, seconds):
        f = self.fields
        f[5] += seconds
        f[4] += minutes + f[5] // 60
        f[5] %= 60
        f[3] += hours + f[4] // 60
        f[4] %= 60
        f[2] += days + f[3] // 24
        f[3] %= 24
        while f[2] > _days_in_month(f[0], f[1]):
            f[2] -= _days_in_month(f[0], f[1])
            f[1] += 1
            if f[1] > 12:
                f[0] += 1
                f[1] = 1

    def text(self):
        return b"%04d-%02d-%02dT%02d:%02d:%02dZ" % tuple(self.fields)


def test_dates_agree_with_a_calendar_walk_from_2024_to_2401():
    # Every 7 days, 13 hours and 61 s: every weekday, hour, minute, second
    # and month comes round, and the century years 2100, 2200, 2300 and 2400.
    buf = bytearray(64)
    walk = _Calendar()
    taken = 0
    while walk.fields[0] < 2401:
        walk.advance(7, 13, 1, 1)
        taken += 7 * 86400 + 13 * 3600 + 61
        assert _time_of(buf, taken) == walk.text(), (taken, _time_of(buf, taken), walk.text())


class _BoardTime:
    """A stand-in for the time module: the board's clock at `now` in its
    port's epoch (gmtime(0) is all timestamp.py reads of its calendar)."""

    def __init__(self, epoch_year, now):
        self.epoch_year = epoch_year
        self.now = now

    def time(self):
        return self.now

    def gmtime(self, seconds):
        if seconds != 0:
            raise AssertionError("timestamp.py read the board's calendar at %r" % (seconds,))
        return (self.epoch_year, 1, 1, 0, 0, 0, 3 if self.epoch_year == 1970 else 5, 1)


def _with_board_clock(board_time, fn):
    from node import timestamp

    saved = (timestamp.time, timestamp._set, timestamp._anchor_s, timestamp._anchor_ticks)
    timestamp.time = board_time
    try:
        timestamp._from_board_clock()
        return fn()
    finally:
        timestamp.time, timestamp._set, timestamp._anchor_s, timestamp._anchor_ticks = saved


def _date_now():
    return _time_of(bytearray(64), now_s())


def test_board_clock_counts_as_set_in_either_epoch():
    # 2026-11-29T07:32:00Z, as the Unix port (1970) and ESP32 / RP2040 (2000) count it.
    for epoch_year, now in ((1970, 1795937520), (2000, 849252720)):
        date = _with_board_clock(_BoardTime(epoch_year, now), _date_now)
        assert date in (b"2026-11-29T07:32:00Z", b"2026-11-29T07:32:01Z"), (epoch_year, date)


def test_board_clock_past_2100_is_dated_by_our_calendar():
    # 2100-03-01T00:00:00Z in Unix seconds: a board's gmtime says 2100-03-02.
    date = _with_board_clock(_BoardTime(1970, UNIX_2024 + 2403475200), _date_now)
    assert date in (b"2100-03-01T00:00:00Z", b"2100-03-01T00:00:01Z"), date


class _BoardTimeNs(_BoardTime):
    """A port with time_ns: the clock read 400 ms into a second."""

    def time_ns(self):
        return self.now * 1000000000 + 400000000


def test_board_clock_in_ns_keeps_the_fraction_of_its_second():
    # Read 400 ms into 07:32:00: that second has 600 ms left, not a whole one.
    def anchor():
        from node import timestamp

        return _date_now(), ticks_diff(ticks_ms(), timestamp._anchor_ticks)

    date, since_whole_second = _with_board_clock(_BoardTimeNs(2000, 849252720), anchor)
    assert date == b"2026-11-29T07:32:00Z", date
    assert 400 <= since_whole_second < 1000, since_whole_second


def test_board_clock_before_2024_is_not_set():
    # A board just powered up reads its epoch: readings go out without a time until NTP.
    for epoch_year, now in ((2000, 0), (2000, 3600), (1970, UNIX_2024 - 1)):
        assert _with_board_clock(_BoardTime(epoch_year, now), now_s) == 0, (epoch_year, now)


def test_now_and_format_allocate_nothing():
    # Up to 2**30 - 1 s since 2024 every value is a small int on a 32-bit
    # board: the fixed times prove the date path, now_s() the clock's (set
    # from a board clock here, whatever the host's reads).
    buf = bytearray(64)

    def readings():
        for i in range(100):
            format_json(buf, 2150 + i, 2, now_s())
            format_json(buf, -2150 - i, 2, 1 + i * 10737418)  # 2024 to 2058
        format_json(buf, 0, 0, (1 << 30) - 1)

    def check():
        assert now_s() > 0
        readings()  # warm-up
        assert allocated_by(readings) == 0
        heap_locked(readings)

    _with_board_clock(_BoardTime(1970, UNIX_2024 + 91870320), check)


def test_set_now_sets_the_clock_and_says_how_far_it_moved():
    from node import timestamp

    saved = (timestamp._set, timestamp._anchor_s, timestamp._anchor_ticks)
    try:
        timestamp._set = False
        target = UNIX_2024 + 233928000  # 2031-05-31T12:00:00Z
        assert timestamp.set_now(target) == 0  # not set before: nothing to compare with
        assert now_s() - 233928000 in (0, 1)
        assert _date_now() in (b"2031-05-31T12:00:00Z", b"2031-05-31T12:00:01Z")
        assert timestamp.set_now(target + 10) in (10, 9)
        assert timestamp.set_now(target - 3600) in (-3610, -3611)
        # An answer from before 2024 (a server that lost its clock) does not count as set.
        timestamp.set_now(978307200)  # 2001-01-01T00:00:00Z
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
