# Reading times for the JSON payload mode: {"v":21.50,"t":"2026-11-23T08:00:00Z"}.
#
# Times are seconds since 2024-01-01T00:00:00Z: a small int (below 2**30) on
# a 32-bit board until 2058-01-09T13:37:03Z, where Unix seconds are already a
# long int (an allocation per reading). The clock runs on ticks_ms from an
# anchor, taken at import from the board's clock if that reads 2024 or later
# (the host clock on the Unix port, the RTC kept through deep sleep) and
# again from each NTP answer. now_s() and format_json() allocate nothing
# while the time is below 2**30 s since 2024.
#
# Dates are this module's own arithmetic, not the time module's: a board's
# mktime / gmtime are a day late from 2100-03-01 and wrap before 2400 (and
# differ from the host's), and a reading must say the same date everywhere.

import time

from compat import const, ticks_add, ticks_diff, ticks_ms
from node.fixed import format_fixed

UNIX_2024 = 1704067200  # Unix seconds at 2024-01-01T00:00:00Z
_DAYS_1970_TO_2024 = const(19723)
_DAY_S = const(86400)
# Move the anchor forward well before ticks_diff's range ends (2**29 ms,
# about 6 days, on a 32-bit port).
_REANCHOR_MS = const(1 << 28)

_set = False
_anchor_s = 0  # seconds since 2024 at _anchor_ticks
_anchor_ticks = ticks_ms()


def now_s():
    """Seconds since 2024-01-01T00:00:00Z, or 0 while the clock is not set.
    Call it at least every three days (the node does, every pass)."""
    global _anchor_s, _anchor_ticks
    if not _set:
        return 0
    elapsed = ticks_diff(ticks_ms(), _anchor_ticks)
    if elapsed >= _REANCHOR_MS:
        whole = elapsed // 1000
        _anchor_s += whole
        _anchor_ticks = ticks_add(_anchor_ticks, whole * 1000)
        elapsed -= whole * 1000
    return _anchor_s + elapsed // 1000


def set_now(unix_seconds):
    """Set the clock (NTP). Returns how far it moved, in s (0 if it was not set)."""
    return _set_since_2024(unix_seconds - UNIX_2024)


def _set_since_2024(seconds, past_ms=0):
    """past_ms: how far into that second the clock was."""
    global _set, _anchor_s, _anchor_ticks
    before = now_s()
    _anchor_s = seconds
    _anchor_ticks = ticks_add(ticks_ms(), -past_ms)
    moved = _anchor_s - before if _set else 0
    _set = _anchor_s > 0  # before 2024: a board just powered up, or a server that lost its clock
    return moved


def _from_board_clock():
    # time() counts from the port's epoch: 1970 on the Unix port, 2000 on
    # ESP32 and RP2040. gmtime(0) names it, and is right on every port; the
    # date of time() itself would go through the board's calendar, which is
    # wrong from 2100 (see the top of this file).
    year, month, day = time.gmtime(0)[:3]
    try:
        # To the ms where the port has it: stamps turn over with the board's
        # seconds, not at whatever fraction of one the clock was read.
        ms = time.time_ns() // 1000000
    except AttributeError:
        ms = int(time.time()) * 1000
    _set_since_2024(ms // 1000 + _days_since_2024(year, month, day) * _DAY_S, ms % 1000)


def _days_since_2024(year, month, day):
    # Days from civil date (H. Hinnant, "chrono-compatible low-level date
    # algorithms"): March-based years put the leap day last.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468 - _DAYS_1970_TO_2024


def _put_date(buf, i, days):
    """YYYY-MM-DD for days since 2024-01-01 (the inverse of the above, no tuple)."""
    z = days + _DAYS_1970_TO_2024 + 719468
    era = z // 146097
    day_of_era = z - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    march_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * march_month + 2) // 5 + 1
    month = march_month + 3 if march_month < 10 else march_month - 9
    year = year_of_era + era * 400 + (month <= 2)
    i = _two(buf, i, year // 100)
    i = _two(buf, i, year % 100)
    buf[i] = 45  # -
    i = _two(buf, i + 1, month)
    buf[i] = 45
    return _two(buf, i + 1, day)


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
    """{"v":<value>,"t":"<UTC ISO 8601>"} into buf; taken in seconds since
    2024 (now_s()), "t" left out when it is 0 (time unknown). Returns the length."""
    i = _put(buf, 0, b'{"v":')
    i += format_fixed(buf, i, value, decimals)
    if taken:
        i = _put(buf, i, b',"t":"')
        i = _put_date(buf, i, taken // _DAY_S)
        second = taken % _DAY_S
        buf[i] = 84  # T
        i = _two(buf, i + 1, second // 3600)
        buf[i] = 58  # :
        i = _two(buf, i + 1, second // 60 % 60)
        buf[i] = 58
        i = _two(buf, i + 1, second % 60)
        i = _put(buf, i, b'Z"')
    buf[i] = 125  # }
    return i + 1


def sync_ntp(host, port, resolve, timeout_ms, log):
    """One SNTP exchange with host, the clock set from it; True when set.
    resolve(host, timeout_ms) -> address. The lookup may take half of
    timeout_ms, the query what is left: the whole stays within it."""
    deadline = ticks_add(ticks_ms(), timeout_ms)
    try:
        address = resolve(host, timeout_ms // 2)
        # Loaded once there is an address to ask: only boards with NTP pay
        # for its code, and a failed lookup needs none of it (nor `socket`).
        from sntp import query

        server_time = query(address, port, max(1, ticks_diff(deadline, ticks_ms())))
    except OSError as e:
        log("ntp: %s" % (e,))
        return False
    log("ntp: clock set from %s:%d (moved %+d s)" % (host, port, set_now(server_time)))
    return True


_from_board_clock()
