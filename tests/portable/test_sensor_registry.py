# sensors.make(): drivers by name, imported on first use; the interface every
# driver shares; the error class.
import sys

from fakebus import FakeADC, FakeDHTReadinto, FakeDS18B20, FakeI2C, FakeOneWire, make_rom
from sensors import DRIVERS, SensorError, make
from sensors.errors import bus_error


def instances():
    i2c = FakeI2C()
    i2c.add_registers(0x76, {0xD0: b"\x60"})
    i2c.response[0x44] = bytes(6)
    return (
        make("bme280", i2c, address=0x76),
        make("sht3x", i2c),
        make("dht22", "Pin(4)", readinto=FakeDHTReadinto()),
        make("ds18b20", FakeOneWire(FakeDS18B20(make_rom([1, 2, 3, 4, 5, 6])))),
        make("mcu_temp", FakeADC(14019)),
        make("adc", FakeADC(0), channel="battery", unit="V", decimals=2, high=660),
        make("sim_temperature", None, seed=1),
        make("sim_humidity", None),
        make("sim_pressure", None),
        make("sim_illuminance", None),
    )


def test_every_registered_name_makes_a_driver():
    made = instances()
    assert len(made) == len(DRIVERS)
    for driver in made:
        n = len(driver.CHANNELS)
        assert n >= 1 and len(driver.UNITS) == n and len(driver.DEVICE_CLASSES) == n and len(driver.DECIMALS) == n
        for decimals in driver.DECIMALS:
            assert isinstance(decimals, int) and 0 <= decimals <= 6
        assert callable(driver.start) and callable(driver.read)


def test_simulated_drivers_read_ints():
    for name in ("sim_temperature", "sim_humidity", "sim_pressure", "sim_illuminance"):
        sensor = make(name, None)
        values = [None] * len(sensor.CHANNELS)
        assert sensor.start() == 0
        sensor.read(values)
        assert all(isinstance(v, int) for v in values), name


def test_unknown_driver_is_a_value_error_naming_it():
    try:
        make("bme680", None)
    except ValueError as e:
        assert "'bme680'" in str(e) and "bme280" in str(e), str(e)
    else:
        raise AssertionError("unknown driver accepted")


def _unload_drivers():
    """Takes every driver module out of sys.modules (and the package), as if
    no board had asked for one yet; returns them, for _reload_drivers."""
    import sensors

    unloaded = {}
    for name in DRIVERS:
        module_name = DRIVERS[name][0]
        full = "sensors." + module_name
        if full in sys.modules:
            unloaded[module_name] = sys.modules.pop(full)
        if module_name in sensors.__dict__:
            delattr(sensors, module_name)
    return unloaded


def _reload_drivers(unloaded):
    # The modules other tests already hold (their classes, their state) come back.
    import sensors

    for module_name in unloaded:
        sys.modules["sensors." + module_name] = unloaded[module_name]
        setattr(sensors, module_name, unloaded[module_name])


def test_driver_module_is_imported_on_first_use():
    # Not "not yet in sys.modules at the start": the 32-bit runtime runs a
    # whole module's tests in one process (and CPython a whole session), so
    # earlier tests have loaded drivers. Start from none loaded instead.
    unloaded = _unload_drivers()
    try:
        make("dht22", "Pin(4)", readinto=FakeDHTReadinto())
        loaded = []
        for name in DRIVERS:
            module_name = DRIVERS[name][0]
            if "sensors." + module_name in sys.modules and module_name not in loaded:
                loaded.append(module_name)
        # Only the driver the board asked for: a board without a DS18B20 never loads the 1-Wire code.
        assert loaded == ["dht22"], loaded
    finally:
        _reload_drivers(unloaded)


def test_sensor_error_is_an_oserror_with_the_message_first():
    e = SensorError("bme280 at 0x76: chip id 0x00, expected 0x60")
    assert isinstance(e, OSError)
    assert str(e) == e.args[0] == "bme280 at 0x76: chip id 0x00, expected 0x60"


def test_bus_error_messages():
    assert str(bus_error("sht3x at 0x44", "starting", OSError(19))) == (
        "sht3x at 0x44: starting: no answer (ENODEV): not connected, not powered or wrong address"
    )
    assert str(bus_error("x", "reading", OSError(5))) == "x: reading: bus error EIO"
    same = SensorError("x: already a sensor error")
    assert bus_error("y", "z", same) is same
