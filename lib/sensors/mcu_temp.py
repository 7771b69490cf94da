# The microcontroller's own temperature sensor: RP2040 through ADC channel 4,
# ESP32 through esp32.mcu_temperature() (S2 / S3 / C3 / C6: degC) or
# esp32.raw_temperature() (the original ESP32: degF). It reads the die, which
# runs warmer than the room: a health value, not a room temperature.
#
#   McuTemp(machine.ADC(4))                                 RP2040 formula
#   McuTemp(esp32.mcu_temperature)                          a callable giving degC
#   McuTemp(esp32.raw_temperature, fahrenheit=True)         a callable giving degF
#   McuTemp()                                               whichever this port has
from compat import const
from sensors.errors import SensorError, bus_error, fixed

# RP2040 datasheet section 4.9.5: T = 27 - (ADC_voltage - 0.706) / 0.001721.
# In integers: the voltage in 10 uV (Vbe of 0.706 V = 70600) and the slope of
# 1.721 mV/degC as 172.1 units per degC, so T in 0.1 degC is
#   270 - (V - 70600) * 100 / 1721; every product stays below 2**30.
_VBE_27C = const(70600)
_SLOPE = const(1721)
_ADC_FULL_SCALE = const(4095)  # 12-bit converter; read_u16 scales 4095 to 65535 (section 4.9)
_ESP32_INVALID_F = const(128)  # raw_temperature() of 128 degF (53.3 degC) is a known bad reading
_T_MIN = const(-400)
_T_MAX = const(1250)


def _port_source():
    # Feature detection: which chip this is, by which module it has.
    try:
        import esp32  # not on RP2: the except takes machine.ADC  # pyright: ignore[reportMissingImports]
    except ImportError:
        try:
            from machine import ADC
        except ImportError:
            raise SensorError("mcu_temp: this port has neither esp32 nor machine.ADC: pass source=")
        return ADC(4), False  # RP2040: channel 4 is the temperature sensor (section 4.9.5)
    if hasattr(esp32, "mcu_temperature"):
        return esp32.mcu_temperature, False  # S2/S3/C3/C6 only: hasattr checked  # pyright: ignore[reportAttributeAccessIssue]
    return esp32.raw_temperature, True


class McuTemp:
    CHANNELS = ("temperature",)
    UNITS = ("°C",)
    DEVICE_CLASSES = ("temperature",)
    DECIMALS = (1,)

    # What a board file's params may set (source is for tests; node.config checks the names).
    PARAMS = ("fahrenheit", "vref_mv", "samples")

    def __init__(self, source=None, fahrenheit=False, vref_mv=3300, samples=4):
        if source is None:
            source, fahrenheit = _port_source()
        self._adc = source if hasattr(source, "read_u16") else None
        self._callable = None if self._adc is not None else source
        if self._adc is None and not callable(source):
            raise ValueError("mcu_temp: source %r has no read_u16() and is not callable" % (source,))
        self._fahrenheit = fahrenheit
        # 12-bit counts -> 10 uV is vref * 100 / 4095: kept as a reduced fraction
        # (330000 / 4095 = 22000 / 273) so the sum of samples times it stays small.
        if not 1 <= samples <= 8:  # 8 * 4095 * 22000 < 2**30
            raise ValueError("mcu_temp: samples %r, expected 1..8" % (samples,))
        scale, full = vref_mv * 100, _ADC_FULL_SCALE
        a, b = scale, full
        while b:
            a, b = b, a % b
        self._volts_num = scale // a
        self._volts_den = full // a * samples
        self._samples = samples
        self._name = "mcu_temp"

    def start(self):
        return 0

    def read(self, values):
        if self._adc is not None:
            t = self._rp2040()
        else:
            t = self._from_callable()
        if t < _T_MIN or t > _T_MAX:
            raise SensorError("%s: %s degC is not a plausible die temperature" % (self._name, fixed(t, 1)))
        values[0] = t

    def _rp2040(self):
        total = 0
        try:
            for _ in range(self._samples):
                # _adc is set only to a source with read_u16, which pyright cannot follow
                total += self._adc.read_u16() >> 4  # back to the 12-bit conversion result  # pyright: ignore[reportFunctionMemberAccess]
        except OSError as e:
            raise bus_error(self._name, "reading ADC channel 4", e)
        volts = (total * self._volts_num + (self._volts_den >> 1)) // self._volts_den  # 10 uV, rounded
        offset = (volts - _VBE_27C) * 100
        return 270 - (2 * offset + _SLOPE) // (2 * _SLOPE)

    def _from_callable(self):
        try:
            reading = self._callable()  # set only when source has no read_u16  # pyright: ignore[reportCallIssue]
        except OSError as e:
            raise bus_error(self._name, "reading the sensor", e)
        if self._fahrenheit:
            if reading == _ESP32_INVALID_F:
                raise SensorError("%s: 128 degF, the ESP32's known invalid reading" % self._name)
            if isinstance(reading, int):
                return ((reading - 32) * 100 + 9) // 18  # (F - 32) * 5/9 in 0.1 degC, rounded
            return int((reading - 32) * 50 / 9 + 0.5) if reading >= 32 else -int((32 - reading) * 50 / 9 + 0.5)
        if isinstance(reading, int):
            return reading * 10
        # A float from the port: converting it allocates, nothing to do about that.
        return int(reading * 10 + 0.5) if reading >= 0 else -int(-reading * 10 + 0.5)
