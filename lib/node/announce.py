# Tells Home Assistant about the node: every discovery config (node.discovery)
# retained, at connect and again whenever Home Assistant says it is back
# online. Gathers what the configs say about the device (firmware version,
# MicroPython version, chip, MAC). node.node loads it (and node.discovery)
# each time it announces and lets go of both after, so a board holds this
# code only then, and a board with DISCOVERY off never.

import gc
import sys

from node import discovery

# Chip names in MicroPython's machine string ("Generic ESP32 module with
# ESP32", "Raspberry Pi Pico W with RP2040") -> who made the chip.
_MANUFACTURERS = (
    ("ESP32", "Espressif"),
    ("ESP8266", "Espressif"),
    ("RP2040", "Raspberry Pi"),
    ("RP2350", "Raspberry Pi"),
    ("STM32", "STMicroelectronics"),
    ("nRF52", "Nordic Semiconductor"),
    # The Unix port names its host OS and compiler ("linux [GCC 14.2.1]
    # version"): the "device" is MicroPython's own port.
    ("linux", "MicroPython"),
    ("darwin", "MicroPython"),
)


def firmware_version():
    """The firmware's version: /firmware_version.py, which tools/deploy.py
    writes from `git describe --always --dirty` at deploy time; "dev" where
    there is none (the Unix port run from the source tree)."""
    try:
        from firmware_version import VERSION  # pyright: ignore[reportMissingImports]
    except ImportError:
        return "dev"
    finally:
        sys.modules.pop("firmware_version", None)  # read once per announce: no RAM kept
    return VERSION


def runtime():
    """("MicroPython 1.28.0", its machine string or None): what the device's
    versions say, not a choice of code path."""
    impl = sys.implementation
    name = "MicroPython" if impl.name == "micropython" else impl.name
    version = "%s %d.%d.%d" % (name, impl.version[0], impl.version[1], impl.version[2])
    return version, getattr(impl, "_machine", None)


def manufacturer(machine):
    if machine:
        for chip, maker in _MANUFACTURERS:
            if chip in machine:
                return maker
    return None


def mac_address(wifi):
    """The station's MAC as aa:bb:cc:dd:ee:ff, or None. A board without
    Wi-Fi (the Unix port's board) has none and gets none: a stand-in shared
    by several nodes would make Home Assistant merge their devices, since it
    takes a connection as the device's identity."""
    if wifi is None:
        return None
    try:
        mac = wifi.wlan.config("mac")
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if not mac or len(mac) != 6:
        return None
    return ":".join("%02x" % b for b in mac)


def device_of(node):
    config = node.config
    version, machine = runtime()
    return discovery.Device(
        config["NODE"],
        config["ROOM"],
        config["PREFIX"],
        node.model,
        firmware_version(),
        runtime=version,
        machine=machine,
        manufacturer=manufacturer(machine),
        mac=mac_address(node.wifi),
        sleep_s=config["DEEP_SLEEP_S"],
        json_payload=node.json_payload,
        wifi=node.wifi is not None,
        store=node.store is not None,
        ota=node.ota is not None,
    )


def _channels(node):
    for channel in node.channels:
        driver = channel.sensor.driver
        k = channel.index
        yield channel.name, driver.UNITS[k], driver.DEVICE_CLASSES[k], channel.decimals, channel.qos


def announce(node):
    """Publish every config, retained, at QoS 0: one write each from the
    transmit buffer, no in-flight slot taken. A config the link loses is
    published again at the next connect, which announces again. Returns how
    many went out."""
    client = node.client
    sent = 0
    gc.collect()
    for topic, payload in discovery.configs(device_of(node), _channels(node)):
        if not client.connected:
            break  # the link dropped: the next connect announces again
        try:
            client.publish(topic, payload, 0, True)
            sent += 1
        except ValueError as e:  # larger than the transmit buffer: say which, go on with the rest
            node.log("discovery: %s not announced: %s" % (topic, e))
        # Each config's text and dict are garbage once sent: collected now, a
        # board's heap has room for the next one in one piece.
        topic = payload = None
        gc.collect()
    return sent


def announce_and_republish(node):
    """announce(), logged; then, when Home Assistant restarted, the last
    readings again (it forgot them)."""
    sent = announce(node)
    why = "Home Assistant online" if node._states_due else "connected"
    node.log("discovery: %d configs announced (%s)" % (sent, why))
    if node._states_due:
        node._states_due = False
        for sensor in node.sensors:
            if sensor.has_values:
                first = sensor.first_channel
                for k in range(len(sensor.values)):
                    node.publish_reading(first + k, sensor.values[k], sensor.taken)
