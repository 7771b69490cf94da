# compat's stand-ins on CPython, for what MicroPython has built in: const,
# the 30-bit wrapping millisecond ticks, and a heap that reports nothing.
# Loaded by compat only where the built-in ones are missing: never on a board.

import time as _time

_TICKS_PERIOD = 1 << 30
_TICKS_HALF = _TICKS_PERIOD // 2


def const(value):
    return value


def ticks_ms():
    return int(_time.monotonic() * 1000) & (_TICKS_PERIOD - 1)  # CPython's time, not a board's  # pyright: ignore[reportAttributeAccessIssue]


def ticks_add(ticks, delta):
    # A board refuses an interval ticks_diff could not measure back.
    if not -_TICKS_HALF < delta < _TICKS_HALF:
        raise OverflowError("ticks interval overflow")
    return (ticks + delta) & (_TICKS_PERIOD - 1)


def ticks_diff(end, start):
    # Signed distance on the wrapping tick circle, as MicroPython defines it.
    return ((end - start + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF


def sleep_ms(ms):
    _time.sleep(ms / 1000)


def mem_alloc():
    return 0


def mem_free():
    return -1
