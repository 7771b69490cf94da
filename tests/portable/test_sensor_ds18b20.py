# DS18B20 driver against a fake 1-Wire bus that speaks the device's protocol.
# Reference values from the DS18B20 datasheet: the temperature/data
# relationship table (register examples), the resolution table (max conversion
# times), the memory map's power-up state (scratchpad 50 05 4B 46 7F FF 0C 10,
# CRC 1C) and the configuration register layout,
# and the CRC example of Maxim application note 27 (family 0x02, serial
# 00000001B81C -> CRC 0xA2).
import support
from fakebus import FakeDS18B20, FakeOneWire, make_rom
from sensors import SensorError
from sensors.ds18b20 import DS18B20, crc8

ROM = make_rom([0x5A, 0x3C, 0x12, 0x07, 0x00, 0x00])
OTHER_ROM = make_rom([0x11, 0x22, 0x33, 0x44, 0x00, 0x00])


def measure(sensor):
    values = [None]
    sensor.start()
    sensor.read(values)
    return values[0]


def expect_error(fn, *args):
    try:
        fn(*args)
    except SensorError as e:
        return str(e)
    raise AssertionError("no SensorError")


def test_crc8_application_note_27_example():
    assert crc8(bytes([0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00]), 0, 7) == 0xA2
    assert crc8(bytes([0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00, 0xA2]), 0, 8) == 0


def test_crc8_of_the_power_up_scratchpad():
    pad = bytes([0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10])
    assert crc8(pad, 0, 8) == 0x1C
    assert crc8(b"123456789", 0, 9) == 0xA1  # the CRC-8/MAXIM catalogue check value


def test_datasheet_temperature_register_examples():
    cases = (
        # register, 0.01 degC (rounded half up from 1/16 degC)
        (0x07D0, 12500),  # +125
        (0x0191, 2506),  # +25.0625
        (0x00A2, 1013),  # +10.125 -> 1012.5 -> 1013
        (0x0008, 50),  # +0.5
        (0x0000, 0),  # 0
        (0xFFF8, -50),  # -0.5
        (0xFF5E, -1012),  # -10.125 -> -1012.5 -> -1012
        (0xFE6F, -2506),  # -25.0625
        (0xFC90, -5500),  # -55
    )
    for raw, expected in cases:
        device = FakeDS18B20(ROM, raw)
        assert measure(DS18B20(FakeOneWire(device))) == expected, hex(raw)


def test_first_start_scans_sets_12_bit_and_converts():
    device = FakeDS18B20(ROM, 0x0191)
    bus = FakeOneWire(device)
    sensor = DS18B20(bus)
    assert sensor.start() == 750  # resolution table: 12 bit, 750 ms
    assert device.conversions == 1
    assert device.scratchpad[4] == 0x7F
    sensor.read([0])
    assert sensor._name == "ds18b20 " + "".join("%02x" % b for b in ROM)


def test_resolution_sets_config_conversion_time_and_masks_undefined_bits():
    for bits, config, ms, expected in ((9, 0x1F, 94, 2500), (10, 0x3F, 188, 2500), (11, 0x5F, 375, 2500)):
        device = FakeDS18B20(ROM, 0x0191)  # 25.0625 degC; the fake sets undefined low bits to 1
        sensor = DS18B20(FakeOneWire(device), resolution=bits)
        assert sensor.start() == ms
        assert device.scratchpad[4] == config
        values = [0]
        sensor.read(values)
        # 9 bit: 25.0; 10 bit: 25.0; 11 bit: 25.0 (0x0191 has only the 1/16 bit below 25)
        assert values[0] == expected, bits
    device = FakeDS18B20(ROM, 0x0196)  # 25.375 degC
    sensor = DS18B20(FakeOneWire(device), resolution=11)
    assert measure(sensor) == 2538  # 11 bit keeps 1/8 degC: 25.375 -> 2537.5 -> 2538


def test_rom_selects_one_device_of_several():
    here = FakeDS18B20(ROM, 0x0150)  # 21.0
    there = FakeDS18B20(OTHER_ROM, 0x0050)  # 5.0
    bus = FakeOneWire(here, there)
    assert measure(DS18B20(bus, rom=OTHER_ROM)) == 500
    assert measure(DS18B20(bus, rom=ROM)) == 2100
    hex_rom = "".join("%02x" % b for b in OTHER_ROM)
    assert measure(DS18B20(bus, rom=hex_rom)) == 500


def test_rom_none_with_two_devices_is_an_error_listing_them():
    bus = FakeOneWire(FakeDS18B20(ROM), FakeDS18B20(OTHER_ROM))
    message = expect_error(DS18B20(bus).start)
    assert "found 2" in message and "%02x" % ROM[1] in message, message


def test_bad_rom_is_a_value_error():
    for rom, word in ((ROM[:7] + bytes([ROM[7] ^ 1]), "CRC"), (make_rom([1, 2, 3, 4, 5, 6], family=0x10), "family")):
        try:
            DS18B20(FakeOneWire(), rom=rom)
        except ValueError as e:
            assert word in str(e), str(e)
        else:
            raise AssertionError("bad ROM accepted")


def test_bad_resolution_is_a_value_error():
    try:
        DS18B20(FakeOneWire(), resolution=8)
    except ValueError as e:
        assert "resolution" in str(e)
    else:
        raise AssertionError("resolution 8 accepted")


def test_scratchpad_crc_error():
    bus = FakeOneWire(FakeDS18B20(ROM, 0x0191))
    sensor = DS18B20(bus)
    sensor.start()
    bus.corrupt = (0, 0x04)  # one flipped bit in the temperature LSB
    message = expect_error(sensor.read, [0])
    assert "CRC" in message, message
    assert measure(sensor) == 2506  # the next reading is fine


def test_power_on_value_85_degc_means_no_conversion():
    device = FakeDS18B20(ROM, 0x0191)
    device.convert_works = False
    sensor = DS18B20(FakeOneWire(device))
    sensor.start()
    assert "power-on" in expect_error(sensor.read, [0])


def test_no_presence_pulse():
    bus = FakeOneWire(FakeDS18B20(ROM))
    sensor = DS18B20(bus, rom=ROM)
    bus.presence = False
    message = expect_error(sensor.start)
    assert message.startswith("ds18b20 %s: " % "".join("%02x" % b for b in ROM)) and "presence" in message, message


def test_no_device_on_the_bus():
    assert "found 0" in expect_error(DS18B20(FakeOneWire()).start)


def test_device_gone_between_start_and_read_reads_all_ones():
    bus = FakeOneWire(FakeDS18B20(ROM))
    sensor = DS18B20(bus, rom=ROM)
    sensor.start()
    bus.devices[0].rom = OTHER_ROM  # MATCH ROM now addresses nobody
    assert "all 1s" in expect_error(sensor.read, [0])


def test_line_held_low_reads_zeros_with_a_valid_crc_and_is_rejected():
    device = FakeDS18B20(ROM)
    sensor = DS18B20(FakeOneWire(device))
    sensor.start()
    device.scratchpad[:] = bytes(9)  # all zeros: CRC 0 over zeros is valid
    assert "configuration byte" in expect_error(sensor.read, [0])


def test_power_cycle_resets_resolution_and_next_start_sets_it_again():
    device = FakeDS18B20(ROM, 0x0191)
    sensor = DS18B20(FakeOneWire(device), resolution=10)
    sensor.start()
    device.write_byte(2, 0x7F)  # back to the EEPROM default, 12 bit
    assert "resolution changed" in expect_error(sensor.read, [0])
    assert sensor.start() == 188
    assert device.scratchpad[4] == 0x3F


def test_replaced_probe_is_found_by_a_new_scan():
    bus = FakeOneWire(FakeDS18B20(ROM, 0x0150))
    sensor = DS18B20(bus)
    assert measure(sensor) == 2100
    bus.devices = []
    assert "presence" in expect_error(sensor.start)
    bus.devices = [FakeDS18B20(OTHER_ROM, 0x0050)]
    assert measure(sensor) == 500


def test_bus_oserror_is_a_sensor_error():
    bus = FakeOneWire(FakeDS18B20(ROM))
    bus.error = 5
    message = expect_error(DS18B20(bus).start)
    assert message.startswith("ds18b20: ") and "1-Wire error" in message, message


def test_read_allocates_nothing():
    bus = FakeOneWire(FakeDS18B20(ROM, 0xFF5E))
    sensor = DS18B20(bus, rom=ROM)
    values = [0]
    sensor.start()
    sensor.read(values)
    # The fake bus allocates while matching the ROM, so the driver's own part
    # is measured against a bus that replays the scratchpad it just sent.
    sensor._ow = _Replay(bus.devices[0].scratchpad)
    assert support.allocated_by(sensor.read, values) == 0
    support.heap_locked(sensor.read, values)
    assert values == [-1012]


class _Replay:
    def __init__(self, scratchpad):
        self.pad = bytes(scratchpad)

    def reset(self):
        return True

    def select_rom(self, rom):
        pass

    def writebyte(self, value):
        pass

    def readinto(self, buf):
        for i in range(9):
            buf[i] = self.pad[i]
