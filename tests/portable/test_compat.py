# The runtime shim: ticks wrap the way MicroPython's do on every runtime.
from compat import const, ticks_add, ticks_diff, ticks_ms

_ANSWER = const(42)


def test_const_is_the_value():
    assert _ANSWER == 42


def test_ticks_diff_is_signed_across_the_wrap():
    start = ticks_ms()
    later = ticks_add(start, 1000)
    assert ticks_diff(later, start) == 1000
    assert ticks_diff(start, later) == -1000
    # A deadline just past the wrap point is still in the future.
    near_wrap = ticks_add(0, -10)
    assert ticks_diff(ticks_add(near_wrap, 20), near_wrap) == 20


def test_ticks_ms_moves_forward():
    from compat import sleep_ms

    a = ticks_ms()
    sleep_ms(5)
    assert ticks_diff(ticks_ms(), a) >= 4
