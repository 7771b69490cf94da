# The one place that knows which runtime it is on: CPython, the MicroPython
# Unix port, or MicroPython on a board (ticks, const, heap, environment).
# Everything else imports from here; the socket, select and ssl differences
# are in netcompat, so that the sans-I/O layers (codec, session, store) load
# on a runtime with no network stack. Feature detection only (try/except
# ImportError), never sys.implementation.

try:
    from micropython import const  # redefined below for CPython  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython

    def const(value):
        return value


try:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms  # redefined below for CPython  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython: emulate MicroPython's 30-bit wrapping millisecond ticks
    import time as _time

    _TICKS_PERIOD = 1 << 30
    _TICKS_HALF = _TICKS_PERIOD // 2

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


try:
    from gc import mem_alloc, mem_free  # redefined below for CPython  # pyright: ignore[reportAssignmentType]
except ImportError:  # CPython has no fixed heap to report

    def mem_alloc():
        return 0

    def mem_free():
        return -1


def getenv(name):
    """An environment variable where the runtime has an environment (CPython,
    the Unix port); None on a board."""
    try:
        from os import getenv as _getenv
    except ImportError:
        return None
    return _getenv(name)
