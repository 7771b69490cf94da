# Sensirion SHT3x-DIS (SHT30 / SHT31 / SHT35) temperature and humidity on I2C,
# single-shot mode without clock stretching. Sections refer to the SHT3x-DIS
# datasheet.
#
# start() sends the measurement command and returns the maximum measurement
# time; read() fetches the 6 result bytes. A read before the measurement is
# done is NACKed by the sensor (4.4), which the bus reports as an OSError.
from compat import const
from sensors.errors import SensorError, bus_error, fixed

_CRC_POLYNOMIAL = const(0x31)  # 4.12, Table 20: x^8 + x^5 + x^4 + 1, init 0xFF, no reflection
_CRC_INIT = const(0xFF)

# 4.3, Table 9: single shot, clock stretching disabled, by repeatability;
# with the maximum measurement duration in ms (section 2, timing
# specification: 15 / 6 / 4 ms, 15.5 / 6.5 / 4.5 ms in earlier revisions),
# rounded up to the larger.
_COMMANDS = {
    "high": (b"\x24\x00", 16),
    "medium": (b"\x24\x0b", 7),
    "low": (b"\x24\x16", 5),
}


def crc8(buf, start, end):
    """4.12: CRC-8 over buf[start:end], polynomial 0x31, init 0xFF (0xBEEF -> 0x92)."""
    crc = _CRC_INIT
    for i in range(start, end):
        crc ^= buf[i]
        for _ in range(8):
            if crc & 0x80:
                crc = ((crc << 1) ^ _CRC_POLYNOMIAL) & 0xFF
            else:
                crc = (crc << 1) & 0xFF
    return crc


class SHT3x:
    CHANNELS = ("temperature", "humidity")
    UNITS = ("°C", "%")
    DEVICE_CLASSES = ("temperature", "humidity")
    DECIMALS = (2, 1)

    # What a board file's params may set (node.config checks the names at boot).
    PARAMS = ("address", "repeatability")

    def __init__(self, i2c, address=0x44, repeatability="high"):
        command = _COMMANDS.get(repeatability)
        if command is None:
            raise ValueError("sht3x: repeatability %r, expected 'high', 'medium' or 'low'" % (repeatability,))
        self._i2c = i2c
        self._address = address
        self._name = "sht3x at 0x%02x" % address
        self._command, self._wait_ms = command
        self._data = bytearray(6)  # T msb, T lsb, T crc, RH msb, RH lsb, RH crc (4.4)
        self._started = False

    def start(self):
        try:
            self._i2c.writeto(self._address, self._command)
        except OSError as e:
            self._started = False
            raise bus_error(self._name, "starting a measurement", e)
        self._started = True
        return self._wait_ms

    def read(self, values):
        if not self._started:
            raise SensorError("%s: read() without a successful start()" % self._name)
        self._started = False  # one result per command (single shot)
        try:
            self._i2c.readfrom_into(self._address, self._data)
        except OSError as e:
            raise bus_error(self._name, "reading the measurement (NACK: not finished?)", e)
        d = self._data
        if crc8(d, 0, 2) != d[2]:
            raise SensorError("%s: temperature CRC 0x%02x, computed 0x%02x" % (self._name, d[2], crc8(d, 0, 2)))
        if crc8(d, 3, 5) != d[5]:
            raise SensorError("%s: humidity CRC 0x%02x, computed 0x%02x" % (self._name, d[5], crc8(d, 3, 5)))
        # 4.13: T = -45 + 175 * S_T / (2^16 - 1) degC, RH = 100 * S_RH / (2^16 - 1) %.
        # 65535 = 5 * 13107, so in 0.01 degC: S_T * 3500 / 13107 - 4500, and in
        # 0.1 %RH: S_RH * 200 / 13107; rounded, and every product stays below 2**30.
        raw_t = (d[0] << 8) | d[1]
        raw_rh = (d[3] << 8) | d[4]
        temperature = (raw_t * 3500 + 6553) // 13107 - 4500
        humidity = (raw_rh * 200 + 6553) // 13107
        # 1.1 / 1.2: specified from -40 to 125 degC; the formula covers -45..130.
        if temperature < -4000 or temperature > 12500:
            raise SensorError(
                "%s: temperature %s degC outside -40..125 (raw 0x%04x)" % (self._name, fixed(temperature, 2), raw_t)
            )
        values[0] = temperature
        values[1] = humidity
