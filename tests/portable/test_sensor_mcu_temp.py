# On-chip temperature: RP2040 ADC channel 4 with the formula of RP2040
# datasheet section 4.9.5, T = 27 - (V - 0.706) / 0.001721 (3.3 V reference),
# and the ESP32 callables (esp32.mcu_temperature in degC, raw_temperature in degF).
import support
from fakebus import FakeADC
from sensors import SensorError
from sensors.mcu_temp import McuTemp


def u16(raw12):
    # What read_u16 returns for a 12-bit conversion on the rp2 port: scaled to 16 bits.
    return (raw12 << 4) | (raw12 >> 8)


def reading(source, **params):
    values = [None]
    sensor = McuTemp(source, **params)
    assert sensor.start() == 0
    sensor.read(values)
    return values[0]


def expect_error(fn, *args, **params):
    try:
        fn(*args, **params)
    except SensorError as e:
        return str(e)
    raise AssertionError("no SensorError")


def test_rp2040_0_706_volts_is_27_degc():
    # 0.706 V of 3.3 V is 876.1 counts of 4095.
    assert reading(FakeADC(u16(876)), samples=1) == 270


def test_rp2040_one_slope_lower_is_one_degree_warmer():
    # 0.706 - 10 * 0.001721 = 0.68879 V -> 37.0 degC; 854.7 counts, so 855 reads 36.9.
    assert reading(FakeADC(u16(855)), samples=1) == 369


def test_rp2040_matches_the_datasheet_formula_within_0_1_degc():
    # Every conversion result whose temperature is plausible (-40..125 degC).
    for raw12 in range(668, 1019):
        exact = 27 - (raw12 * 3.3 / 4095 - 0.706) / 0.001721
        got = reading(FakeADC(u16(raw12)), samples=1)
        assert abs(got - exact * 10) <= 0.55, (raw12, got, exact)


def test_rp2040_samples_are_averaged():
    adc = FakeADC(values=[u16(870), u16(882), u16(876), u16(876)])
    assert reading(adc, samples=4) == 270
    assert adc.reads == 4


def test_rp2040_zero_volts_is_implausible():
    assert "plausible" in expect_error(reading, FakeADC(0))


def test_esp32_mcu_temperature_in_degc():
    assert reading(lambda: 41) == 410
    assert reading(lambda: 40.56) == 406
    assert reading(lambda: -3.25) == -33


def test_esp32_raw_temperature_in_degf():
    assert reading(lambda: 122, fahrenheit=True) == 500  # (122 - 32) * 5/9 = 50.0
    assert reading(lambda: 33, fahrenheit=True) == 6  # 0.56 degC
    assert reading(lambda: 100.4, fahrenheit=True) == 380


def test_esp32_raw_128_degf_is_the_known_invalid_reading():
    assert "128" in expect_error(reading, lambda: 128, fahrenheit=True)


def test_adc_oserror_is_a_sensor_error():
    adc = FakeADC(u16(876))
    adc.error = 5
    message = expect_error(reading, adc)
    assert message.startswith("mcu_temp: ") and "EIO" in message, message


def test_source_must_be_adc_or_callable():
    try:
        McuTemp(42)
    except ValueError as e:
        assert "read_u16" in str(e)
    else:
        raise AssertionError("42 accepted as a source")


def test_without_source_on_a_port_without_esp32_or_adc():
    try:
        import esp32  # noqa: F401

        support.skip("this runtime has esp32")
    except ImportError:
        pass
    try:
        from machine import ADC  # noqa: F401

        support.skip("this runtime has machine.ADC")
    except ImportError:
        pass
    assert "source=" in expect_error(McuTemp)


def test_read_allocates_nothing():
    sensor = McuTemp(FakeADC(u16(876)))
    values = [0]
    sensor.read(values)
    assert support.allocated_by(sensor.read, values) == 0
    support.heap_locked(sensor.read, values)
    assert values == [270]
