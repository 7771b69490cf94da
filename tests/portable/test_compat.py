# The runtime shim: ticks wrap the way MicroPython's do on every runtime.
import support
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


def test_ticks_add_refuses_an_interval_a_board_refuses():
    # A board's ticks_diff measures less than half its 2**30 ms period, so
    # its ticks_add raises for 2**29 ms (6.2 days) or more, either way; the
    # CPython shim does the same, so CPython runs catch such a deadline too.
    if ticks_add(0, -1) != (1 << 30) - 1:
        support.skip("the tick period here is not a board's 2**30 ms (the Unix port's is 2**62)")
    start = ticks_ms()
    assert ticks_diff(ticks_add(start, (1 << 29) - 1), start) == (1 << 29) - 1
    for delta in (1 << 29, -(1 << 29), 604800000):
        try:
            ticks_add(start, delta)
        except OverflowError:
            continue
        raise AssertionError("ticks_add took %d ms" % delta)
