# Bosch BME280 temperature / humidity / pressure sensor on I2C, forced mode.
# Section numbers refer to the BME280 datasheet (BST-BME280-DS002).
#
# The compensation is the datasheet's own integer code: section 4.2.3 for
# temperature (0.01 degC) and humidity (Q22.10 %RH), appendix 8.2 for pressure
# in 32-bit fixed point (Pa). It is transcribed exactly, so results match the
# C reference bit for bit; Python ints never overflow, so there is no wrap to
# emulate, only the unsigned division of 8.2 to keep.
#
# Heap: a MicroPython int above 2**30 is a heap object on a 32-bit board. Two
# products in 8.2 always exceed that ((32768+var1)*dig_P1 and (...)*3125), so
# they are computed split into parts that stay small, giving the same result
# (tests/portable/test_sensor_bme280.py checks them against the plain formula).
# The rest stays below 2**30 from about -13 to +63 degC (measured over two
# real calibrations); colder or hotter, (var1>>2)**2 and dig_P2*var1 in the
# pressure code pass it: still exact, but that read allocates a few bigints.
# Humidity passes it only for raw values above 100 %RH, which are clamped.
import struct

from compat import const
from sensors.errors import SensorError, bus_error, fixed

_REG_CALIB_TP = const(0x88)  # 0x88..0xA1: dig_T1..dig_P9, 0xA0 unused, dig_H1 (Table 16)
_CALIB_TP_SIZE = const(26)
_REG_CHIP_ID = const(0xD0)  # 5.4.1
_CHIP_ID = const(0x60)
_REG_CALIB_H = const(0xE1)  # 0xE1..0xE7: dig_H2..dig_H6 (Table 16)
_CALIB_H_SIZE = const(7)
_REG_CTRL_HUM = const(0xF2)  # 5.4.3
_REG_STATUS = const(0xF3)  # 5.4.4
_REG_CTRL_MEAS = const(0xF4)  # 5.4.5
_REG_CONFIG = const(0xF5)  # 5.4.6
_REG_DATA = const(0xF7)  # 0xF7..0xFE: press msb/lsb/xlsb, temp msb/lsb/xlsb, hum msb/lsb (5.3)
_DATA_SIZE = const(8)

_STATUS_MEASURING = const(0x08)  # 5.4.4: a conversion is running
_STATUS_IM_UPDATE = const(0x01)  # 5.4.4: NVM calibration still being copied
_MODE_FORCED = const(0x01)  # 5.4.5 / 3.3.3: one measurement, then sleep
_SKIPPED_20BIT = const(0x80000)  # 5.3 memory map: reset value, also what a skipped measurement reads
_SKIPPED_16BIT = const(0x8000)

# Operating range, section 1 (specification): -40..85 degC, 300..1100 hPa.
_T_MIN = const(-4000)
_T_MAX = const(8500)
_P_MIN = const(30000)
_P_MAX = const(110000)

# 5.4.3 / 5.4.5: oversampling factor -> osrs_x register code.
_OVERSAMPLING_CODES = {1: 1, 2: 2, 4: 3, 8: 4, 16: 5}
_BMP280_IDS = (0x56, 0x57, 0x58)


def _signed8(byte):
    return byte - 256 if byte > 127 else byte


class BME280:
    CHANNELS = ("temperature", "humidity", "pressure")
    UNITS = ("°C", "%", "hPa")
    DEVICE_CLASSES = ("temperature", "humidity", "atmospheric_pressure")
    DECIMALS = (2, 1, 1)

    # What a board file's params may set (node.config checks the names at boot).
    PARAMS = ("address", "oversampling")

    def __init__(self, i2c, address=0x76, oversampling=1):
        code = _OVERSAMPLING_CODES.get(oversampling)
        if code is None:
            raise ValueError("bme280: oversampling %r, expected one of 1, 2, 4, 8, 16" % (oversampling,))
        self._i2c = i2c
        self._address = address
        self._name = "bme280 at 0x%02x" % address
        self._reg = bytearray(1)
        self._data = bytearray(_DATA_SIZE)
        self._ctrl_hum = bytes((code,))
        self._ctrl_meas = bytes(((code << 5) | (code << 2) | _MODE_FORCED,))
        # 9.1 (Appendix B), measurement time, max: 1.25 ms + 2.3 ms * osrs_t
        # + (2.3 ms * osrs_p + 0.575 ms) + (2.3 ms * osrs_h + 0.575 ms).
        us = 1250 + 2300 * oversampling + 2 * (2300 * oversampling + 575)
        self._wait_ms = (us + 999) // 1000
        self._ready = False  # chip id checked, calibration read, ctrl_hum set
        self._t_fine = 0

    # ---- setup: once, and again after any bus error (sensor replugged) ----

    def _setup(self):
        i2c = self._i2c
        address = self._address
        reg = self._reg
        try:
            i2c.readfrom_mem_into(address, _REG_CHIP_ID, reg)
        except OSError as e:
            raise bus_error(self._name, "reading the chip id", e)
        if reg[0] != _CHIP_ID:
            hint = " (a BMP280: it has no humidity sensor)" if reg[0] in _BMP280_IDS else ""
            raise SensorError("%s: chip id 0x%02x, expected 0x%02x%s" % (self._name, reg[0], _CHIP_ID, hint))
        tp = bytearray(_CALIB_TP_SIZE)
        h = bytearray(_CALIB_H_SIZE)
        try:
            i2c.readfrom_mem_into(address, _REG_STATUS, reg)
            if not reg[0] & _STATUS_IM_UPDATE:
                i2c.readfrom_mem_into(address, _REG_CALIB_TP, tp)
                i2c.readfrom_mem_into(address, _REG_CALIB_H, h)
                # Filter off, no standby: forced mode (3.3.3, 5.4.6).
                i2c.writeto_mem(address, _REG_CONFIG, b"\x00")
                # 5.4.3: ctrl_hum takes effect at the next ctrl_meas write (each start()).
                i2c.writeto_mem(address, _REG_CTRL_HUM, self._ctrl_hum)
        except OSError as e:
            raise bus_error(self._name, "reading the calibration", e)
        if reg[0] & _STATUS_IM_UPDATE:
            raise SensorError("%s: still copying its calibration (status im_update), try again" % self._name)
        self._load_calibration(tp, h)
        self._ready = True

    def _load_calibration(self, tp, h):
        # Table 16: little-endian words; dig_H4 / dig_H5 are 12-bit signed,
        # sharing the nibbles of 0xE5, with the sign in 0xE4 / 0xE6.
        (
            self._t1,
            self._t2,
            self._t3,
            self._p1,
            self._p2,
            self._p3,
            self._p4,
            self._p5,
            self._p6,
            self._p7,
            self._p8,
            self._p9,
        ) = struct.unpack_from("<HhhHhhhhhhhh", tp, 0)
        self._h1 = tp[25]
        self._h2 = struct.unpack_from("<h", h, 0)[0]
        self._h3 = h[2]
        self._h4 = (_signed8(h[3]) << 4) | (h[4] & 0x0F)
        self._h5 = (_signed8(h[5]) << 4) | (h[4] >> 4)
        self._h6 = _signed8(h[6])
        if self._t1 == 0 or self._p1 == 0 or self._t1 == 0xFFFF or self._p1 == 0xFFFF:
            raise SensorError(
                "%s: calibration invalid (dig_T1 0x%04x, dig_P1 0x%04x)" % (self._name, self._t1, self._p1)
            )

    # ---- the driver interface ----

    def start(self):
        if not self._ready:
            self._setup()
        try:
            self._i2c.writeto_mem(self._address, _REG_CTRL_MEAS, self._ctrl_meas)
        except OSError as e:
            self._ready = False
            raise bus_error(self._name, "starting a measurement", e)
        return self._wait_ms

    def read(self, values):
        if not self._ready:
            raise SensorError("%s: read() without a successful start()" % self._name)
        try:
            self._i2c.readfrom_mem_into(self._address, _REG_STATUS, self._reg)
            self._i2c.readfrom_mem_into(self._address, _REG_DATA, self._data)
        except OSError as e:
            self._ready = False
            raise bus_error(self._name, "reading the measurement", e)
        if self._reg[0] & _STATUS_MEASURING:
            raise SensorError(
                "%s: measurement still running (read before the %d ms start() asked for)" % (self._name, self._wait_ms)
            )
        d = self._data
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7]
        if adc_t == _SKIPPED_20BIT or adc_p == _SKIPPED_20BIT or adc_h == _SKIPPED_16BIT:
            raise SensorError("%s: no measurement in the data registers (0x80000: not run or skipped)" % self._name)
        t = self.compensate_temperature(adc_t)
        if t < _T_MIN or t > _T_MAX:
            raise SensorError("%s: temperature %s degC outside -40..85 (raw 0x%05x)" % (self._name, fixed(t, 2), adc_t))
        p = self.compensate_pressure(adc_p)
        if p < _P_MIN or p > _P_MAX:
            raise SensorError("%s: pressure %d Pa outside 30000..110000 (raw 0x%05x)" % (self._name, p, adc_p))
        values[0] = t
        values[1] = (self.compensate_humidity(adc_h) * 10 + 512) >> 10  # Q22.10 %RH -> 0.1 %RH, rounded
        values[2] = (p + 5) // 10  # Pa -> 0.1 hPa, rounded

    # ---- datasheet compensation (also called by the tests) ----

    def compensate_temperature(self, adc_t):
        """4.2.3 BME280_compensate_T_int32: 0.01 degC; sets t_fine."""
        t1 = self._t1
        var1 = (((adc_t >> 3) - (t1 << 1)) * self._t2) >> 11
        x = (adc_t >> 4) - t1
        var2 = (((x * x) >> 12) * self._t3) >> 14
        self._t_fine = var1 + var2
        return (self._t_fine * 5 + 128) >> 8

    def compensate_pressure(self, adc_p):
        """8.2 BME280_compensate_P_int32: Pa. Uses t_fine of the last temperature."""
        var1 = (self._t_fine >> 1) - 64000
        sq = (var1 >> 2) * (var1 >> 2)
        var2 = ((sq >> 11) * self._p6) + ((var1 * self._p5) << 1)
        var2 = (var2 >> 2) + (self._p4 << 16)
        var1 = (((self._p3 * (sq >> 13)) >> 3) + ((self._p2 * var1) >> 1)) >> 18
        # var1 = ((32768 + var1) * dig_P1) >> 15, with dig_P1 split into bytes:
        # a*P1 = 256*(a*P1_hi + (a*P1_lo >> 8)) + (a*P1_lo & 255), and the low
        # byte never carries into bit 15, so the shift is exact.
        a = 32768 + var1
        p1 = self._p1
        var1 = (a * (p1 >> 8) + ((a * (p1 & 0xFF)) >> 8)) >> 7
        if var1 <= 0:
            # 8.2 returns 0 for var1 == 0 "to avoid division by zero".
            raise SensorError("%s: pressure compensation divisor %d (bad calibration)" % (self._name, var1))
        x = (1048576 - adc_p) - (var2 >> 12)
        if x <= 0:
            raise SensorError("%s: raw pressure 0x%05x out of range" % (self._name, adc_p))
        # p = x * 3125 (an unsigned 32-bit in 8.2), then
        #   p < 0x80000000: p = (p << 1) / var1   else: p = (p / var1) * 2,
        # computed as quotient and remainder of x / var1 so nothing passes 2**30.
        q = x // var1
        r = x - q * var1
        if x < 687195:  # x * 3125 < 0x80000000
            p = q * 6250 + (r * 6250) // var1
        else:
            p = (q * 3125 + (r * 3125) // var1) * 2
        var1 = (self._p9 * (((p >> 3) * (p >> 3)) >> 13)) >> 12
        var2 = ((p >> 2) * self._p8) >> 13
        return p + ((var1 + var2 + self._p7) >> 4)

    def compensate_humidity(self, adc_h):
        """4.2.3 bme280_compensate_H_int32: %RH in Q22.10 (47445 = 46.333 %RH)."""
        v = self._t_fine - 76800
        a = (((adc_h << 14) - (self._h4 << 20) - (self._h5 * v)) + 16384) >> 15
        b = (((((v * self._h6) >> 10) * (((v * self._h3) >> 11) + 32768)) >> 10) + 2097152) * self._h2
        v = a * ((b + 8192) >> 14)
        v = v - (((((v >> 15) * (v >> 15)) >> 7) * self._h1) >> 4)
        if v < 0:
            v = 0
        elif v > 419430400:
            v = 419430400
        return v >> 12
