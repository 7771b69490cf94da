# Safe mode: the board's SAFE_MODE_PIN held in the first moment after a reset
# keeps main.py from starting the node and its watchdog. Against a stand-in
# for `machine` whose button is pressed after a given number of reads.
# Runs on CPython and on the Unix port.
from compat import ticks_diff, ticks_ms
from node import safe_mode

WINDOW_MS = 100


class Machine:
    PWRON_RESET = 1
    DEEPSLEEP_RESET = 4

    def __init__(self, pressed_after=None, cause=1):
        """pressed_after: reads of the pin before it reads low (None: never)."""
        self.cause = cause
        self.reads = 0
        self.pins = []
        machine = self

        class Pin:
            IN = 0
            PULL_UP = 1

            def __init__(self, pin, mode, pull):
                machine.pins.append((pin, mode, pull))

            def value(self):
                machine.reads += 1
                return 0 if pressed_after is not None and machine.reads > pressed_after else 1

        self.Pin = Pin

    def reset_cause(self):
        return self.cause


def test_no_pin_no_safe_mode_and_no_wait():
    machine = Machine(pressed_after=0)
    started = ticks_ms()
    assert safe_mode.requested(None, machine, WINDOW_MS) is False
    assert machine.pins == [] and ticks_diff(ticks_ms(), started) < WINDOW_MS


def test_button_held_at_start_is_seen_at_once_through_the_pull_up():
    machine = Machine(pressed_after=0)
    assert safe_mode.requested(0, machine, WINDOW_MS) is True
    assert machine.pins == [(0, 0, 1)]  # GPIO0 as an input with its pull-up
    assert machine.reads == 1


def test_button_pressed_within_the_window_counts():
    machine = Machine(pressed_after=3)
    assert safe_mode.requested(5, machine, WINDOW_MS) is True
    assert machine.reads == 4


def test_button_never_pressed_ends_with_the_window():
    machine = Machine()
    started = ticks_ms()
    assert safe_mode.requested(5, machine, WINDOW_MS) is False
    waited = ticks_diff(ticks_ms(), started)
    assert WINDOW_MS <= waited < WINDOW_MS + 1000, waited
    assert machine.reads >= 3  # it kept looking, not once at the start


def test_wake_from_deep_sleep_skips_the_button():
    machine = Machine(pressed_after=0, cause=Machine.DEEPSLEEP_RESET)
    assert safe_mode.requested(0, machine, WINDOW_MS) is False
    assert machine.reads == 0


def test_port_without_a_deep_sleep_reset_cause_still_reads_the_button():
    machine = Machine(pressed_after=0)
    del Machine.DEEPSLEEP_RESET  # as on a port that lacks it
    try:
        assert safe_mode.requested(0, machine, WINDOW_MS) is True
    finally:
        Machine.DEEPSLEEP_RESET = 4
