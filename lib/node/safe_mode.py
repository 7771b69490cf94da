# A way back to the REPL. Once main.py starts a board's watchdog nothing can
# stop it, so after a Ctrl-C the board resets within WATCHDOG_MS and the REPL
# (or an mpremote session) is cut off. Holding the board file's SAFE_MODE_PIN
# low, or the Pico's BOOTSEL button, in the first second after a reset makes
# main.py start neither the node nor the watchdog.
#
# On an ESP32 the BOOT button is GPIO0, a strapping pin: held *during* the
# reset it enters the ROM bootloader instead. Press it just after the reset.

from compat import const, sleep_ms, ticks_diff, ticks_ms

WINDOW_MS = const(1000)
_POLL_MS = const(20)


def requested(pin, machine, window_ms=WINDOW_MS):
    """True if the safe-mode pin is held within window_ms of now. pin: None
    (no safe mode), a GPIO number (held = low, the pull-up on), or "bootsel"."""
    if pin is None:
        return False
    if machine.reset_cause() == getattr(machine, "DEEPSLEEP_RESET", None):
        return False  # a battery board waking: nobody at the button, and no second to spare
    held = _reader(pin, machine)
    started = ticks_ms()
    while True:
        if held():
            return True
        if ticks_diff(ticks_ms(), started) >= window_ms:
            return False
        sleep_ms(_POLL_MS)


def _reader(pin, machine):
    if pin == "bootsel":
        import rp2  # RP2 only: config allows "bootsel" there  # pyright: ignore[reportMissingImports]

        return lambda: rp2.bootsel_button() == 1
    button = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
    return lambda: button.value() == 0
