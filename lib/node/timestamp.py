# Reading times for the JSON payload mode: {"v":21.50,"t":"2026-11-23T08:00:00Z"}.
# A board's clock starts at its epoch after power-up; it counts as set once
# it reads a plausible year: after NTP, or at once where the clock kept the
# time (the host clock on the Unix port, the RTC through deep sleep).

import time

from node.fixed import format_fixed

_EARLIEST_YEAR = 2024
# NTP's time minus the board's clock. Kept as an offset rather than written
# to the RTC: the same on every port, and the Unix port cannot set its clock.
_offset_s = 0


def now_s():
    """Seconds since the runtime's epoch, or 0 while the clock is not set."""
    t = int(time.time()) + _offset_s
    return t if time.gmtime(t)[0] >= _EARLIEST_YEAR else 0


def set_now(seconds):
    """Make now_s() read `seconds` from this moment on."""
    global _offset_s
    _offset_s = seconds - int(time.time())
    return _offset_s


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


def sync_ntp(host, port, resolve, timeout_ms, log):
    """One SNTP exchange with host, the clock set from it; True when set.
    resolve(host, timeout_ms) -> address. The lookup may take half of
    timeout_ms, the query what is left: the whole stays within it."""
    from compat import ticks_add, ticks_diff, ticks_ms
    from sntp import query  # only boards with NTP pay for its code

    deadline = ticks_add(ticks_ms(), timeout_ms)
    try:
        address = resolve(host, timeout_ms // 2)
        server_time = query(address, port, max(1, ticks_diff(deadline, ticks_ms())))
    except OSError as e:
        log("ntp: %s" % (e,))
        return False
    log("ntp: clock set from %s:%d (%+d s)" % (host, port, set_now(server_time)))
    return True
