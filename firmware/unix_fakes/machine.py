# A small fake of MicroPython's `machine` for the Unix port, so the firmware
# runs unchanged on a developer machine and in CI. Only simulated sensors
# are usable here: the buses raise when touched.
import os
import sys
import time

# Not compat's getenv: a board has `machine` on an empty flash, before a
# deploy has copied lib/ (tests/test_deploy.py feeds the fake WDT then). The
# 32-bit test runtime has no os.getenv: every variable reads as unset there.
getenv = getattr(os, "getenv", lambda name: None)

feeds = 0
resets = 0


PWRON_RESET = 1
DEEPSLEEP_RESET = 4
# FAKE_RESET_CAUSE=deepsleep: this start is a wake from deep sleep.
_reset_cause = DEEPSLEEP_RESET if getenv("FAKE_RESET_CAUSE") == "deepsleep" else PWRON_RESET
# FAKE_PINS_LOW=0,5: those input pins read low (a button held); the rest high.
_pins_low = [int(p) for p in (getenv("FAKE_PINS_LOW") or "").split(",") if p]


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self, pin, mode=-1, pull=None):
        self.pin = pin

    def value(self, v=None):
        return 0 if self.pin in _pins_low else 1


def reset_cause():
    return _reset_cause


class I2C:
    def __init__(self, bus_id=0, scl=None, sda=None, freq=100000):
        self.id = bus_id

    def scan(self):
        return []

    def readfrom_mem_into(self, address, register, buf):
        raise OSError(19, "no I2C hardware on the Unix port")

    def writeto_mem(self, address, register, buf):
        raise OSError(19, "no I2C hardware on the Unix port")


class ADC:
    def __init__(self, pin):
        self.pin = pin

    def read_u16(self):
        return 0


class WDT:
    """Resets the "board" when not fed for `timeout` ms, as the hardware
    would: a thread watches the last feed and, when it is too old, kills
    this process with SIGKILL (whatever the main thread is stuck in). Whoever
    started the process plays the power supply and starts it again (the
    tests; tools/run_local.py). Like the real one, it cannot be stopped."""

    def __init__(self, id=0, timeout=5000):
        import _thread

        self.timeout = timeout
        self._fed_at = time.ticks_ms()
        _thread.start_new_thread(self._watch, ())

    def feed(self):
        global feeds
        self._fed_at = time.ticks_ms()
        feeds += 1
        if feeds == 1:  # so a test can see the main loop feeds it
            print("machine.WDT: first feed (timeout %d ms)" % self.timeout)

    def _watch(self):
        check_ms = min(self.timeout // 10 + 1, 100)
        while True:
            time.sleep_ms(check_ms)
            starved = time.ticks_diff(time.ticks_ms(), self._fed_at)
            if starved > self.timeout:
                print("machine.WDT: not fed for %d ms (timeout %d ms): resetting the board" % (starved, self.timeout))
                os.system("kill -KILL $PPID")  # the shell's parent: this process
                time.sleep_ms(1000)


class Timer:
    """machine.Timer's one-shot and periodic modes, the callback run from a
    thread as a board runs it from an interrupt or a soft-timer context
    (lib/ota/startup.py's deadline: its callback only schedules the work)."""

    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, mode=PERIODIC, period=-1, callback=None):
        self._generation = 0
        if callback is not None:
            self.init(mode=mode, period=period, callback=callback)

    def init(self, mode=PERIODIC, period=-1, callback=None):
        import _thread

        self._generation += 1
        _thread.start_new_thread(self._run, (self._generation, mode, period, callback))

    def deinit(self):
        self._generation += 1

    def _run(self, generation, mode, period, callback):
        while True:
            time.sleep_ms(period)
            if generation != self._generation:
                return
            if callback is not None:
                callback(self)
            if mode == Timer.ONE_SHOT:
                return


def reset():
    global resets
    resets += 1
    print("machine.reset() on the Unix port: exiting")
    # SystemExit ends the process, except where MicroPython catches and
    # prints exceptions (a callback run by micropython.schedule, as the OTA
    # deadline's is): a board's reset ends everything there too, so the
    # process is killed a moment later if it is still alive.
    try:
        import _thread

        _thread.start_new_thread(_reset_anyway, ())
    except ImportError:  # the 32-bit test runtime: no threads
        pass
    sys.exit(75)


def _reset_anyway():
    time.sleep_ms(1000)
    os.system("kill -KILL $PPID")  # the shell's parent: this process


def deepsleep(ms=0):
    print("machine.deepsleep(%d) on the Unix port: sleeping, then exiting as a reset would" % ms)
    time.sleep_ms(ms)
    sys.exit(0)


def unique_id():
    return b"\x00unix\x00"
