# Simulated sensors for the Unix-port board and CI: the same interface as the
# real drivers, no hardware. Each reading is a smooth, bounded random walk
# around a realistic value, fully determined by the seed, so a run is
# repeatable and two nodes with different seeds show different curves.
#
# read() allocates nothing: the state is a handful of small ints and the
# random source is a 16-bit xorshift (period 65535), no float, no bigint.
#
# Set `failing = True` on an instance to make read() raise SensorError, to
# exercise a node's error path without hardware.
from compat import const
from sensors.errors import SensorError

_MASK16 = const(0xFFFF)


class _RandomWalk:
    # Subclasses set the interface tuples and the walk, in units of 10**-DECIMALS:
    # CENTER (the value the walk returns to), SPREAD (never further than this
    # from CENTER) and STEP (largest random push per reading).
    NAME = "simulated"
    CENTER = 0
    SPREAD = 0
    STEP = 0
    SALT = 0

    # What a board file's params may set (node.config checks the names at boot).
    PARAMS = ("seed", "center", "spread", "step")

    def __init__(self, bus_or_pin=None, seed=1, center=None, spread=None, step=None):
        # bus_or_pin is unused: the signature matches every driver's.
        self._center = self.CENTER if center is None else center
        self._spread = self.SPREAD if spread is None else spread
        self._step = self.STEP if step is None else step
        if self._spread < 0 or self._step < 0:
            raise ValueError("%s: spread and step must be >= 0" % self.NAME)
        # The salt keeps sensors with the same seed from walking in step.
        self._state = ((seed * 40503 + self.SALT) & _MASK16) or 1  # xorshift state is never 0
        # The walk runs in 1/256 of the output unit, so rounding adds no drift.
        self._value = self._center << 8
        self._velocity = 0
        self.failing = False

    def _random16(self):
        # xorshift16 (shifts 7, 9, 8): every non-zero 16-bit state, period 65535.
        x = self._state
        x ^= (x << 7) & _MASK16
        x ^= x >> 9
        x ^= (x << 8) & _MASK16
        self._state = x
        return x

    def start(self):
        return 0

    def read(self, values):
        if self.failing:
            raise SensorError("%s: simulated failure" % self.NAME)
        # A random push of -STEP..STEP, low-pass filtered into a velocity so the
        # curve is smooth, and a pull back toward CENTER so it stays near it.
        push = ((self._random16() & 0xFF) * 2 - 255) * self._step
        velocity = (self._velocity * 7 + push) >> 3
        value = self._value + velocity - ((self._value - (self._center << 8)) >> 7)
        low = (self._center - self._spread) << 8
        high = (self._center + self._spread) << 8
        if value < low or value > high:
            # Bounce off the bound.
            value = low if value < low else high
            velocity = -velocity >> 1
        self._velocity = velocity
        self._value = value
        values[0] = (value + 128) >> 8


class SimTemperature(_RandomWalk):
    NAME = "sim_temperature"
    CHANNELS = ("temperature",)
    UNITS = ("°C",)
    DEVICE_CLASSES = ("temperature",)
    DECIMALS = (2,)
    CENTER = 2100  # 21.00 degC
    SPREAD = 300
    STEP = 8
    SALT = 0x1D2B


class SimHumidity(_RandomWalk):
    NAME = "sim_humidity"
    CHANNELS = ("humidity",)
    UNITS = ("%",)
    DEVICE_CLASSES = ("humidity",)
    DECIMALS = (1,)
    CENTER = 450  # 45.0 %RH
    SPREAD = 150
    STEP = 6
    SALT = 0x5A17


class SimPressure(_RandomWalk):
    NAME = "sim_pressure"
    CHANNELS = ("pressure",)
    UNITS = ("hPa",)
    DEVICE_CLASSES = ("atmospheric_pressure",)
    DECIMALS = (1,)
    CENTER = 10132  # 1013.2 hPa
    SPREAD = 200
    STEP = 4
    SALT = 0x2C71


class SimIlluminance(_RandomWalk):
    NAME = "sim_illuminance"
    CHANNELS = ("illuminance",)
    UNITS = ("lx",)
    DEVICE_CLASSES = ("illuminance",)
    DECIMALS = (0,)
    CENTER = 300  # lx, a lit room
    SPREAD = 250
    STEP = 24
    SALT = 0x7E03
