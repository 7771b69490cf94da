# A small fake of MicroPython's `machine` for the Unix port, so the firmware
# runs unchanged on a developer machine and in CI. Only simulated sensors
# are usable here: the buses raise when touched.
import sys
import time

feeds = 0
resets = 0


class Pin:
    IN = 0
    OUT = 1

    def __init__(self, pin, mode=-1, pull=None):
        self.pin = pin

    def value(self, v=None):
        return 0


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
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        global feeds
        feeds += 1
        if feeds == 1:  # so a test can see the main loop feeds it
            print("machine.WDT: first feed (timeout %d ms)" % self.timeout)


def reset():
    global resets
    resets += 1
    print("machine.reset() on the Unix port: exiting")
    sys.exit(75)


def deepsleep(ms=0):
    print("machine.deepsleep(%d) on the Unix port: sleeping, then exiting as a reset would" % ms)
    time.sleep_ms(ms)
    sys.exit(0)


def unique_id():
    return b"\x00unix\x00"
