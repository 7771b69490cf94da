# A plain analog input, read with read_u16() (machine.ADC on every port) and
# scaled linearly to a fixed-point int:
#   value = low + (raw - raw_low) * (high - low) / (raw_high - raw_low)
# with low / high in units of 10**-decimals. Examples:
#   ADC(adc)                                                   0..3.300 V
#   ADC(adc, channel="soil", unit="%", device_class="moisture", decimals=1,
#       raw_low=52000, raw_high=21000, low=0, high=1000, clamp=True)
#                                         dry at 52000, wet at 21000, 0.0..100.0 %
# The products stay small ints (below 2**30) while |high - low| * samples <=
# 16383; a wider span is exact but allocates on a 32-bit board.
from sensors.errors import SensorError, bus_error


class ADC:
    # Class defaults; each instance sets its own from the constructor.
    CHANNELS = ("voltage",)
    UNITS = ("V",)
    DEVICE_CLASSES = ("voltage",)
    DECIMALS = (3,)

    # What a board file's params may set (node.config checks the names at boot).
    PARAMS = ("channel", "unit", "device_class", "decimals", "low", "high", "raw_low", "raw_high", "samples", "clamp")

    def __init__(
        self,
        adc,
        channel="voltage",
        unit="V",
        device_class="voltage",
        decimals=3,
        low=0,
        high=3300,
        raw_low=0,
        raw_high=65535,
        samples=1,
        clamp=False,
    ):
        if raw_low == raw_high:
            raise ValueError("adc %s: raw_low and raw_high are both %d" % (channel, raw_low))
        if samples < 1:
            raise ValueError("adc %s: samples %r, expected 1 or more" % (channel, samples))
        if not 0 <= decimals <= 6:
            raise ValueError("adc %s: decimals %r, expected 0..6" % (channel, decimals))
        # The driver interface, per instance: one channel, named by the board.
        self.CHANNELS = (channel,)
        self.UNITS = (unit,)
        self.DEVICE_CLASSES = (device_class,)
        self.DECIMALS = (decimals,)
        self._adc = adc
        self._name = "adc %s" % channel
        self._low = low
        self._raw_low = raw_low
        # Scale as num / den with den > 0, so the rounding below is symmetric.
        span, den = high - low, raw_high - raw_low
        if den < 0:
            span, den = -span, -den
        self._span = span
        self._den = den * samples
        self._half = self._den >> 1
        self._samples = samples
        self._clamp = (min(low, high), max(low, high)) if clamp else None

    def start(self):
        return 0

    def read(self, values):
        total = 0
        try:
            for _ in range(self._samples):
                total += self._adc.read_u16()
        except OSError as e:
            raise bus_error(self._name, "reading", e)
        if total < 0 or total > 65535 * self._samples:
            raise SensorError("%s: read_u16 gave %d, outside 0..65535" % (self._name, total // self._samples))
        num = (total - self._raw_low * self._samples) * self._span
        value = self._low + (num + self._half) // self._den  # rounded half up
        if self._clamp is not None:
            if value < self._clamp[0]:
                value = self._clamp[0]
            elif value > self._clamp[1]:
                value = self._clamp[1]
        values[0] = value
