# DHT22 / AM2302 driver with a fake dht_readinto and a hand-moved clock.
# Reference values from the AM2302 datasheet's data-format example:
#   0000 0010 1000 1100  0000 0001 0101 1111  1110 1110
#   RH 0x028C = 652 -> 65.2 %RH, T 0x015F = 351 -> 35.1 degC,
#   checksum 0x02 + 0x8C + 0x01 + 0x5F = 0xEE;
#   and "1000 0000 0110 0101" (bit 15 set) -> -10.1 degC.
import support
from compat import ticks_add
from fakebus import FakeClock, FakeDHTReadinto, dht22_frame
from sensors import SensorError
from sensors.dht22 import DHT22

DATASHEET_FRAME = bytes([0x02, 0x8C, 0x01, 0x5F, 0xEE])
PIN = "Pin(4)"


def sensor_with(frame):
    clock = FakeClock(1000)
    readinto = FakeDHTReadinto(frame)
    sensor = DHT22(PIN, readinto=readinto, clock=clock)
    clock.now += 1000  # past the power-up second
    return sensor, readinto, clock


def measure(sensor):
    values = [None, None]
    assert sensor.start() == 0
    sensor.read(values)
    return values


def expect_error(fn, *args):
    try:
        fn(*args)
    except SensorError as e:
        return str(e)
    raise AssertionError("no SensorError")


def test_datasheet_example_65_2_percent_35_1_degc():
    sensor, _, _ = sensor_with(DATASHEET_FRAME)
    assert measure(sensor) == [351, 652]


def test_datasheet_negative_temperature_minus_10_1():
    frame = bytes([0x02, 0x8C, 0x80, 0x65, (0x02 + 0x8C + 0x80 + 0x65) & 0xFF])
    assert frame == dht22_frame(652, -101)
    sensor, _, _ = sensor_with(frame)
    assert measure(sensor) == [-101, 652]


def test_sign_bit_is_sign_and_magnitude_not_twos_complement():
    sensor, _, _ = sensor_with(dht22_frame(500, -1))  # 0x8001: -0.1 degC
    assert measure(sensor) == [-1, 500]
    sensor, _, _ = sensor_with(dht22_frame(500, -400))  # -40.0 degC, the bottom of the range
    assert measure(sensor) == [-400, 500]


def test_checksum_mismatch_is_an_error():
    sensor, _, _ = sensor_with(bytes([0x02, 0x8C, 0x01, 0x5F, 0xEF]))
    message = expect_error(measure, sensor)
    assert message.startswith("dht22 on Pin(4): checksum 0xef, computed 0xee"), message


def test_checksum_is_the_low_byte_of_the_sum():
    # 0x03 + 0xE8 + 0x00 + 0xFF = 0x1EA: checksum 0xEA (100.0 %RH, 25.5 degC).
    sensor, _, _ = sensor_with(bytes([0x03, 0xE8, 0x00, 0xFF, 0xEA]))
    assert measure(sensor) == [255, 1000]
    # 0xFF + 0xFF + 0x00 + 0x01 = 0x1FF: checksum 0xFF, but 0xFFFF is 6553.5 %RH.
    sensor, _, _ = sensor_with(bytes([0xFF, 0xFF, 0x00, 0x01, 0xFF]))
    assert "humidity" in expect_error(measure, sensor)


def test_timeout_is_a_sensor_error():
    sensor, readinto, _ = sensor_with(DATASHEET_FRAME)
    readinto.error = 110  # ETIMEDOUT, as dht_readinto raises it
    message = expect_error(measure, sensor)
    assert message.startswith("dht22 on Pin(4): no answer"), message


def test_all_zero_frame_is_an_error():
    sensor, _, _ = sensor_with(bytes(5))
    assert "all-zero" in expect_error(measure, sensor)


def test_out_of_range_values_are_errors():
    for humidity, temperature, word in ((1001, 200, "humidity"), (500, 801, "temperature"), (500, -401, "temperature")):
        sensor, _, _ = sensor_with(dht22_frame(humidity, temperature))
        assert word in expect_error(measure, sensor), (humidity, temperature)
    # Clones that send 12-bit two's complement below zero (0x0FFF for -0.1) read as 409.5 degC: rejected.
    sensor, _, _ = sensor_with(dht22_frame(500, 0x0FFF))
    assert "409.5" in expect_error(measure, sensor)


def test_start_waits_out_power_up_then_two_seconds_between_readings():
    clock = FakeClock(5000)
    readinto = FakeDHTReadinto(DATASHEET_FRAME)
    sensor = DHT22(PIN, readinto=readinto, clock=clock)
    assert sensor.start() == 1000  # first reading: 1 s after power-up (construction)
    clock.now += 400
    assert sensor.start() == 600
    clock.now += 600
    assert sensor.start() == 0
    sensor.read([0, 0])
    assert sensor.start() == 2000
    clock.now += 1500
    assert sensor.start() == 500
    clock.now += 500
    assert sensor.start() == 0
    sensor.read([0, 0])
    assert readinto.calls == 2


def test_read_too_early_is_an_error_without_touching_the_pin():
    sensor, readinto, clock = sensor_with(DATASHEET_FRAME)
    measure(sensor)
    clock.now += 1999
    assert "1 ms too early" in expect_error(sensor.read, [0, 0])
    assert readinto.calls == 1
    clock.now += 1
    sensor.read([0, 0])
    assert readinto.calls == 2


def test_a_failed_reading_also_starts_the_interval():
    sensor, readinto, clock = sensor_with(DATASHEET_FRAME)
    readinto.error = 110
    expect_error(measure, sensor)
    readinto.error = None
    assert sensor.start() == 2000


def test_interval_across_the_tick_wrap():
    # The wrap point depends on the port (2**30 on boards, larger on the Unix port).
    clock = FakeClock(ticks_add(0, -500))
    sensor = DHT22(PIN, readinto=FakeDHTReadinto(DATASHEET_FRAME), clock=clock)
    clock.now = ticks_add(clock.now, 999)
    assert clock.now < 1000 and sensor.start() == 1
    clock.now = ticks_add(clock.now, 1)
    assert sensor.start() == 0


def test_without_dht_module_construction_says_so():
    try:
        import dht  # noqa: F401

        support.skip("this runtime has a dht module")
    except ImportError:
        pass
    try:
        DHT22(PIN)
    except SensorError as e:
        assert "dht_readinto" in str(e)
    else:
        raise AssertionError("DHT22 built without dht_readinto")


def test_read_allocates_nothing():
    sensor, _, clock = sensor_with(DATASHEET_FRAME)
    values = [0, 0]
    measure(sensor)
    clock.now += 2000
    assert support.allocated_by(sensor.read, values) == 0
    clock.now += 2000
    support.heap_locked(sensor.read, values)
    assert values == [351, 652]
