# The one error every sensor driver raises, and the helper that turns a bus
# failure into it.
#
# SensorError subclasses OSError on purpose: a failed reading is an I/O
# failure, machine.I2C / dht / onewire already raise OSError for the same
# events, and a node loop that catches OSError keeps running even if a bus
# error ever slips through a driver unwrapped. Catch SensorError to tell a
# sensor failure from a network one.
#
# The message (args[0]) names the sensor and the cause:
#   "bme280 at 0x76: chip id 0x00, expected 0x60"
# Do not read .errno: on MicroPython it is args[0] (the message), on CPython None.
from errno import ENODEV, errorcode


class SensorError(OSError):
    pass


def fixed(value, decimals):
    """'-12.05' for fixed(-1205, 2): fixed-point ints in messages."""
    if decimals == 0:
        return "%d" % value
    scale = 10**decimals
    sign = "-" if value < 0 else ""
    value = -value if value < 0 else value
    return "%s%d.%0*d" % (sign, value // scale, decimals, value % scale)


def bus_error(sensor, action, exc):
    """The SensorError for an OSError raised by the bus while `action`."""
    if isinstance(exc, SensorError):
        return exc
    code = exc.args[0] if exc.args else None
    if code == ENODEV:
        cause = "no answer (ENODEV): not connected, not powered or wrong address"
    elif isinstance(code, int):
        cause = "bus error %s" % (errorcode.get(code) or code)
    else:
        cause = "bus error %r" % (exc,)
    return SensorError("%s: %s: %s" % (sensor, action, cause))
