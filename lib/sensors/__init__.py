# Sensor drivers, loaded by name from a board file:
#   make("bme280", i2c, address=0x76)  ->  sensors.bme280.BME280(i2c, address=0x76)
# A driver module is imported only when a board asks for it, so a board
# without a DS18B20 never loads the 1-Wire code.
#
# Every driver has the same shape (the node is written against it):
#   CHANNELS, UNITS, DEVICE_CLASSES, DECIMALS   tuples, one entry per quantity
#   start() -> ms to wait before read() (0 if none); never sleeps
#   read(values)   values[i] = int(quantity * 10**DECIMALS[i]); raises SensorError
from sensors.errors import SensorError  # noqa: F401 - re-exported for the node

# name -> (module in this package, class)
DRIVERS = {
    "bme280": ("bme280", "BME280"),
    "sht3x": ("sht3x", "SHT3x"),
    "dht22": ("dht22", "DHT22"),
    "ds18b20": ("ds18b20", "DS18B20"),
    "mcu_temp": ("mcu_temp", "McuTemp"),
    "adc": ("adc", "ADC"),
    "sim_temperature": ("simulated", "SimTemperature"),
    "sim_humidity": ("simulated", "SimHumidity"),
    "sim_pressure": ("simulated", "SimPressure"),
    "sim_illuminance": ("simulated", "SimIlluminance"),
}


def driver_class(name):
    """The driver class for `name`, importing its module on first use."""
    entry = DRIVERS.get(name)
    if entry is None:
        raise ValueError("unknown sensor driver %r: known are %s" % (name, ", ".join(sorted(DRIVERS))))
    module_name, class_name = entry
    module = __import__("sensors." + module_name, None, None, (class_name,))
    return getattr(module, class_name)


def make(name, bus_or_pin, **params):
    """A driver instance: make("sht3x", i2c, address=0x45)."""
    return driver_class(name)(bus_or_pin, **params)
