# Aosong AM2302 / DHT22 temperature and humidity on one GPIO pin.
# Sections refer to the AM2302 datasheet (Aosong).
#
# The bit-banged transfer is MicroPython's C routine dht.dht_readinto(pin, buf),
# which fills 5 raw bytes (or raises OSError on a timeout); decoding and the
# checksum are done here, so a test passes its own `readinto`.
#
# The sensor needs 2 s between two readings (datasheet: sampling period
# >= 2 s) and, after power-up, about 1 s before the first. start() never
# sleeps: it returns how many ms are left of that interval (0 when the
# interval is over), counted from the last read, or from construction for the
# first one. The transfer itself (about 5 ms) happens in read(). A read()
# that comes too early raises SensorError rather than returning an older
# value under a new timestamp.
from compat import const, ticks_diff, ticks_ms
from sensors.errors import SensorError, fixed

_INTERVAL_MS = const(2000)  # minimum time between two readings
_POWER_UP_MS = const(1000)  # after power-up, before the first reading
# Measuring range (datasheet, "technical specification"): 0..99.9 %RH, -40..80 degC.
_T_MIN = const(-400)
_T_MAX = const(800)
_RH_MAX = const(1000)


def _default_readinto():
    try:
        from dht import dht_readinto  # dht.py imports it from esp or rp2; its stub leaves it out  # pyright: ignore[reportAttributeAccessIssue]
    except ImportError:
        return None
    return dht_readinto


class DHT22:
    CHANNELS = ("temperature", "humidity")
    UNITS = ("°C", "%")
    DEVICE_CLASSES = ("temperature", "humidity")
    DECIMALS = (1, 1)

    # What a board file's params may set: nothing (readinto and clock are for tests).
    PARAMS = ()

    def __init__(self, pin, readinto=None, clock=ticks_ms):
        self._pin = pin
        self._name = "dht22 on %s" % (pin,)
        self._readinto = readinto or _default_readinto()
        if self._readinto is None:
            raise SensorError("%s: this port has no dht.dht_readinto" % self._name)
        self._clock = clock
        self._raw = bytearray(5)  # RH hi, RH lo, T hi (bit 7: sign), T lo, checksum
        # Treat construction as power-up: the first reading waits _POWER_UP_MS.
        self._last = clock()
        self._interval = _POWER_UP_MS

    def _remaining_ms(self):
        left = self._interval - ticks_diff(self._clock(), self._last)
        return left if left > 0 else 0

    def start(self):
        return self._remaining_ms()

    def read(self, values):
        left = self._remaining_ms()
        if left:
            raise SensorError("%s: read %d ms too early (2 s between readings)" % (self._name, left))
        self._last = self._clock()
        self._interval = _INTERVAL_MS
        raw = self._raw
        try:
            self._readinto(self._pin, raw)
        except OSError as e:
            raise SensorError("%s: no answer (%r): wiring, pull-up or power?" % (self._name, e))
        # Datasheet "data format": checksum = low 8 bits of the sum of bytes 0..3.
        if (raw[0] + raw[1] + raw[2] + raw[3]) & 0xFF != raw[4]:
            raise SensorError(
                "%s: checksum 0x%02x, computed 0x%02x (raw %02x %02x %02x %02x)"
                % (self._name, raw[4], (raw[0] + raw[1] + raw[2] + raw[3]) & 0xFF, raw[0], raw[1], raw[2], raw[3])
            )
        if not (raw[0] | raw[1] | raw[2] | raw[3]):
            # All zeros passes the checksum, but is what a stuck line reads.
            raise SensorError("%s: all-zero frame (data line stuck low?)" % self._name)
        humidity = (raw[0] << 8) | raw[1]  # 0.1 %RH
        # 0.1 degC; bit 15 is the sign, the rest the magnitude (not two's complement).
        temperature = ((raw[2] & 0x7F) << 8) | raw[3]
        if raw[2] & 0x80:
            temperature = -temperature
        if humidity > _RH_MAX:
            raise SensorError("%s: humidity %s %% out of range" % (self._name, fixed(humidity, 1)))
        if temperature < _T_MIN or temperature > _T_MAX:
            raise SensorError("%s: temperature %s degC outside -40..80" % (self._name, fixed(temperature, 1)))
        values[0] = temperature
        values[1] = humidity
