# SHT3x driver against a fake I2C bus. Reference values from the SHT3x-DIS
# datasheet: CRC-8 properties and example (4.12, Table 20: CRC(0xBEEF) = 0x92),
# conversion formulas (4.13), single-shot commands (4.3, Table 9).
import support
from fakebus import FakeI2C
from sensors import SensorError
from sensors.sht3x import SHT3x, crc8

ADDRESS = 0x44


def sensirion_crc8(data):
    # Table 20, written apart from the driver's: poly 0x31, init 0xFF, MSB first.
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def frame(raw_t, raw_rh):
    t = bytes([raw_t >> 8, raw_t & 0xFF])
    rh = bytes([raw_rh >> 8, raw_rh & 0xFF])
    return t + bytes([sensirion_crc8(t)]) + rh + bytes([sensirion_crc8(rh)])


def fake_sht3x(raw_t=0x6666, raw_rh=0x8000, address=ADDRESS):
    i2c = FakeI2C()
    i2c.response[address] = frame(raw_t, raw_rh)
    return i2c


def measure(sensor):
    values = [None, None]
    sensor.start()
    sensor.read(values)
    return values


def expect_error(fn, *args):
    try:
        fn(*args)
    except SensorError as e:
        return str(e)
    raise AssertionError("no SensorError")


def test_crc8_datasheet_example_beef_is_92():
    assert crc8(b"\xbe\xef", 0, 2) == 0x92
    assert sensirion_crc8(b"\xbe\xef") == 0x92


def test_conversion_formulas():
    # 4.13: T = -45 + 175 * S / 65535, RH = 100 * S / 65535.
    cases = (
        # raw T, raw RH, 0.01 degC, 0.1 %RH
        (0x6666, 0x0000, 2500, 0),  # 26214: 25.00 degC exactly; 0 %RH
        (0x8000, 0x8000, 4250, 500),  # 32768: 42.5013 degC, 50.0008 %RH
        (0x3E2F, 0xFFFF, -249, 1000),  # 15919: -2.4910 degC; 100 %RH
        (0x2EE0, 0x4CCD, -1296, 300),  # 12000: -12.9561 degC; 19661: 30.0008 %RH
    )
    for raw_t, raw_rh, t, rh in cases:
        assert measure(SHT3x(fake_sht3x(raw_t, raw_rh))) == [t, rh], (raw_t, raw_rh)
    # Every raw value: the integer result is the formula rounded to the nearest step.
    for raw in range(0x1000, 0x10000, 97):
        t = -45 + 175 * raw / 65535
        rh = 100 * raw / 65535
        if t > 125:
            break
        got = measure(SHT3x(fake_sht3x(raw, raw)))
        assert abs(got[0] - t * 100) <= 0.5 and abs(got[1] - rh * 10) <= 0.5, (raw, got)


def test_start_sends_single_shot_command_and_returns_max_duration():
    for repeatability, command, ms in (("high", b"\x24\x00", 16), ("medium", b"\x24\x0b", 7), ("low", b"\x24\x16", 5)):
        i2c = fake_sht3x()
        assert SHT3x(i2c, repeatability=repeatability).start() == ms
        assert i2c.written == [(ADDRESS, None, command)]


def test_other_address():
    assert measure(SHT3x(fake_sht3x(address=0x45), address=0x45)) == [2500, 500]  # 0x6666, 0x8000


def test_temperature_crc_mismatch_is_an_error():
    i2c = fake_sht3x()
    bad = bytearray(i2c.response[ADDRESS])
    bad[2] ^= 0x01
    i2c.response[ADDRESS] = bytes(bad)
    sensor = SHT3x(i2c)
    sensor.start()
    message = expect_error(sensor.read, [0, 0])
    assert message.startswith("sht3x at 0x44: temperature CRC"), message


def test_humidity_crc_mismatch_is_an_error():
    i2c = fake_sht3x()
    bad = bytearray(i2c.response[ADDRESS])
    bad[4] ^= 0x80  # a data bit, not the CRC
    i2c.response[ADDRESS] = bytes(bad)
    sensor = SHT3x(i2c)
    sensor.start()
    assert "humidity CRC" in expect_error(sensor.read, [0, 0])


def test_missing_device_names_enodev():
    message = expect_error(SHT3x(FakeI2C()).start)
    assert message.startswith("sht3x at 0x44: ") and "ENODEV" in message, message


def test_read_nacked_while_measuring_is_an_error_and_needs_a_new_start():
    i2c = fake_sht3x()
    sensor = SHT3x(i2c)
    sensor.start()
    i2c.nack_reads = 1  # 4.4: the sensor NACKs the read header until done
    assert "NACK" in expect_error(sensor.read, [0, 0])
    assert "start()" in expect_error(sensor.read, [0, 0])
    assert measure(sensor) == [2500, 500]


def test_read_without_start_is_an_error():
    assert "start()" in expect_error(SHT3x(fake_sht3x()).read, [0, 0])


def test_temperature_below_minus_40_is_out_of_range():
    # Raw 0 converts to -45 degC, below the specified -40 (all-zero frame, valid CRCs).
    sensor = SHT3x(fake_sht3x(0x0000, 0x0000))
    sensor.start()
    assert "outside -40..125" in expect_error(sensor.read, [0, 0])


def test_bad_repeatability_is_a_value_error():
    try:
        SHT3x(FakeI2C(), repeatability="max")
    except ValueError as e:
        assert "repeatability" in str(e)
    else:
        raise AssertionError("repeatability 'max' accepted")


def test_read_allocates_nothing():
    sensor = SHT3x(fake_sht3x())
    values = [0, 0]
    sensor.start()
    sensor.read(values)
    sensor.start()
    assert support.allocated_by(sensor.read, values) == 0
    sensor.start()
    support.heap_locked(sensor.read, values)
    assert values == [2500, 500]
