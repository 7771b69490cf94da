# Builds the bus or pin object a sensor driver needs from the board file's
# plain data, using the board's `machine` module (a fake on the Unix port).


def make_hardware(machine=None):
    if machine is None:
        import machine

    buses = {}

    def hardware(sensor, bus):
        driver = sensor["driver"]
        if driver.startswith("sim_"):
            return None
        if bus is not None:
            name = sensor["bus"]
            if name not in buses:
                buses[name] = _make_bus(machine, bus)
            return buses[name]
        pin = sensor["pin"]
        if pin is None:
            if driver == "mcu_temp":
                return None  # the driver finds the chip's own sensor
            raise ValueError("board sensor %r needs a 'pin' or a 'bus'" % driver)
        if driver in ("adc", "mcu_temp"):
            return machine.ADC(pin)
        return machine.Pin(pin)

    return hardware


def _make_bus(machine, bus):
    kind, settings = bus
    if kind == "I2C":
        return machine.I2C(
            settings.get("id", 0),
            scl=machine.Pin(settings["scl"]),
            sda=machine.Pin(settings["sda"]),
            freq=settings.get("freq", 100000),
        )
    import onewire

    return onewire.OneWire(machine.Pin(settings["pin"]))
