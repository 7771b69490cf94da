# Reading times for the JSON payload mode: {"v":21.50,"t":"2026-11-23T08:00:00Z"}.
# A board's clock starts at its epoch after power-up; it counts as set once
# it reads a plausible year (NTP, or the host clock on the Unix port).

import time

from node.fixed import format_fixed

_EARLIEST_YEAR = 2024


def now_s():
    """Seconds since the runtime's epoch, or 0 while the clock is not set."""
    t = int(time.time())
    return t if time.gmtime(t)[0] >= _EARLIEST_YEAR else 0


def _put(buf, i, text):
    for c in text:
        buf[i] = c
        i += 1
    return i


def _two(buf, i, n):
    buf[i] = 48 + n // 10
    buf[i + 1] = 48 + n % 10
    return i + 2


def format_json(buf, value, decimals, taken):
    """{"v":<value>,"t":"<UTC ISO 8601>"} into buf; "t" left out when taken
    is 0 (time unknown). Returns the length."""
    i = _put(buf, 0, b'{"v":')
    i += format_fixed(buf, i, value, decimals)
    if taken:
        year, month, day, hour, minute, second = time.gmtime(taken)[:6]
        i = _put(buf, i, b',"t":"')
        i = _two(buf, i, year // 100)
        i = _two(buf, i, year % 100)
        buf[i] = 45  # -
        i = _two(buf, i + 1, month)
        buf[i] = 45
        i = _two(buf, i + 1, day)
        buf[i] = 84  # T
        i = _two(buf, i + 1, hour)
        buf[i] = 58  # :
        i = _two(buf, i + 1, minute)
        buf[i] = 58
        i = _two(buf, i + 1, second)
        i = _put(buf, i, b'Z"')
    buf[i] = 125  # }
    return i + 1


def set_clock_from_ntp(log):
    """One NTP attempt where the board has ntptime; True when the clock is set."""
    try:
        import ntptime
    except ImportError:
        return now_s() != 0  # no NTP here (the Unix port): the host clock
    try:
        ntptime.settime()
    except (OSError, OverflowError) as e:
        log("ntp: %r" % (e,))
        return False
    return now_s() != 0
