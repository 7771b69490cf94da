# Plain ADC channel: read_u16 scaled linearly to a fixed-point int.
import support
from fakebus import FakeADC
from sensors import SensorError
from sensors.adc import ADC


def reading(adc, **params):
    values = [None]
    sensor = ADC(adc, **params)
    assert sensor.start() == 0
    sensor.read(values)
    return values[0]


def test_default_is_volts_with_3_decimals_over_3_3_v():
    assert reading(FakeADC(0)) == 0
    assert reading(FakeADC(65535)) == 3300
    assert reading(FakeADC(32768)) == 1650  # 1.65005 V
    sensor = ADC(FakeADC(0))
    assert (sensor.CHANNELS, sensor.UNITS, sensor.DEVICE_CLASSES, sensor.DECIMALS) == (
        ("voltage",),
        ("V",),
        ("voltage",),
        (3,),
    )


def test_inverted_calibration_with_clamp_gives_percent():
    soil = dict(
        channel="soil",
        unit="%",
        device_class="moisture",
        decimals=1,
        raw_low=52000,
        raw_high=21000,
        low=0,
        high=1000,
        clamp=True,
    )
    assert reading(FakeADC(52000), **soil) == 0
    assert reading(FakeADC(21000), **soil) == 1000
    assert reading(FakeADC(36500), **soil) == 500
    assert reading(FakeADC(60000), **soil) == 0  # drier than the dry point: clamped
    assert reading(FakeADC(1000), **soil) == 1000
    assert ADC(FakeADC(0), **soil).CHANNELS == ("soil",)


def test_offset_scale_and_rounding():
    # A 0..10 V divider read as -5.00..+5.00: low -500, high 500, 2 decimals.
    assert reading(FakeADC(0), decimals=2, low=-500, high=500) == -500
    assert reading(FakeADC(65535), decimals=2, low=-500, high=500) == 500
    assert reading(FakeADC(32767), decimals=2, low=-500, high=500) == 0  # -0.0076 rounds to 0


def test_samples_are_averaged():
    adc = FakeADC(values=[1000, 2000, 3000, 4000])
    assert reading(adc, samples=4, decimals=0, high=65535) == 2500
    assert adc.reads == 4


def test_bad_parameters_are_value_errors():
    for params in (dict(raw_low=5, raw_high=5), dict(samples=0), dict(decimals=7)):
        try:
            ADC(FakeADC(), **params)
        except ValueError:
            pass
        else:
            raise AssertionError("accepted %r" % (params,))


def test_oserror_is_a_sensor_error():
    adc = FakeADC(100)
    adc.error = 110
    try:
        reading(adc, channel="battery")
    except SensorError as e:
        assert str(e).startswith("adc battery: reading: ") and "ETIMEDOUT" in str(e), str(e)
    else:
        raise AssertionError("no SensorError")


def test_read_allocates_nothing():
    sensor = ADC(FakeADC(40000), clamp=True)
    values = [0]
    sensor.read(values)
    assert support.allocated_by(sensor.read, values) == 0
    support.heap_locked(sensor.read, values)
    assert values == [2014]
