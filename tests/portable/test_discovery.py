# Home Assistant discovery configs (node.discovery) and the device facts
# node.announce gathers for them, with no broker: every key one Home
# Assistant 2024.3 reads, the entities each kind of board gets, sleeping
# nodes, and the size of every config. Runs on CPython, the Unix port and
# the 32-bit runtime. What Home Assistant makes of them: `make ha`.
import json
import sys

from node import announce, discovery

# Home Assistant 2024.3's abbreviations (components/mqtt/abbreviations.py)
# for the keys these configs use, and the platforms' own keys ("qos", "min",
# "max", "step", "mode" are not abbreviated).
HA_KEYS = {
    "name": "name",
    "uniq_id": "unique_id",
    "stat_t": "state_topic",
    "stat_cla": "state_class",
    "avty_t": "availability_topic",
    "dev": "device",
    "o": "origin",
    "unit_of_meas": "unit_of_measurement",
    "dev_cla": "device_class",
    "val_tpl": "value_template",
    "exp_aft": "expire_after",
    "sug_dsp_prc": "suggested_display_precision",
    "ent_cat": "entity_category",
    "json_attr_t": "json_attributes_topic",
    "cmd_t": "command_topic",
    "pl_on": "payload_on",
    "pl_off": "payload_off",
    "qos": "qos",
    "min": "min",
    "max": "max",
    "step": "step",
    "mode": "mode",
    "pl_inst": "payload_install",
}
HA_DEVICE_KEYS = {
    "ids": "identifiers",
    "cns": "connections",
    "name": "name",
    "mdl": "model",
    "mf": "manufacturer",
    "sa": "suggested_area",
    "sw": "sw_version",
    "hw": "hw_version",
}
HA_ORIGIN_KEYS = {"name": "name", "sw": "sw_version", "url": "support_url"}
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
# The diagnostics report's keys (node.node's _publish_diagnostics).
REPORT_KEYS = (
    "uptime_s",
    "free_heap",
    "rssi",
    "reconnects",
    "dropped",
    "buffered",
    "store_errors",
    "sensor_errors",
    "published",
    "qos2_downgraded",
    "commands_dropped",
    "interval_s",
)
# boards/unix.py's readings: (name, unit, device class, decimals, qos).
UNIX_CHANNELS = (
    ("temperature", "°C", "temperature", 2, 1),
    ("humidity", "%", "humidity", 1, 1),
    ("pressure", "hPa", "atmospheric_pressure", 1, 0),
    ("illuminance", "lx", "illuminance", 0, 0),
)


def device(**changes):
    settings = {
        "node": "unix-node",
        "room": "living_room",
        "prefix": "house",
        "model": "ESP32 DevKitC",
        "version": "594e9f6-dirty",
        "runtime": "MicroPython 1.28.0",
        "machine": "Generic ESP32 module with ESP32",
        "manufacturer": "Espressif",
        "mac": "aa:bb:cc:dd:ee:ff",
        "sleep_s": 0,
        "json_payload": False,
        "wifi": True,
        "store": False,
        "ota": False,
    }
    for key in changes:
        settings[key] = changes[key]
    return discovery.Device(
        settings["node"],
        settings["room"],
        settings["prefix"],
        settings["model"],
        settings["version"],
        runtime=settings["runtime"],
        machine=settings["machine"],
        manufacturer=settings["manufacturer"],
        mac=settings["mac"],
        sleep_s=settings["sleep_s"],
        json_payload=settings["json_payload"],
        wifi=settings["wifi"],
        store=settings["store"],
        ota=settings["ota"],
    )


def all_configs(dev, channels=UNIX_CHANNELS):
    """{topic: config dict} of every entity of the node."""
    out = {}
    for topic, text in discovery.configs(dev, channels):
        assert topic not in out, "two configs on %s" % topic
        out[topic] = json.loads(text)
    return out


def by_object(configs):
    """{(component, object id): config}."""
    out = {}
    for topic in configs:
        levels = topic.split("/")
        out[(levels[1], levels[3])] = configs[topic]
    return out


def is_discovery_id(text):
    # <node_id> and <object_id>: only [a-zA-Z0-9_-], and not empty.
    if not text:
        return False
    for c in text:
        if c not in ID_CHARS:
            return False
    return True


# ---- topics and names ----------------------------------------------------


def test_config_topic_is_prefix_component_node_object_config():
    assert discovery.config_topic("unix-node", "temperature") == "homeassistant/sensor/unix-node/temperature/config"
    topic = discovery.config_topic("pico-bedroom", "status", "binary_sensor")
    assert topic == "homeassistant/binary_sensor/pico-bedroom/status/config"


def test_config_topic_ids_replace_other_characters():
    topic = discovery.config_topic("my node.1", "floor temp/x+#")
    assert topic == "homeassistant/sensor/my_node_1/floor_temp_x__/config"


def test_config_topic_ids_are_ascii_on_every_runtime():
    # The class [a-zA-Z0-9_-] is ASCII: a node named for a German kitchen
    # must not put 'ü' (or a superscript digit) into a discovery topic.
    assert discovery.config_topic("küche-1", "temp²") == "homeassistant/sensor/k_che-1/temp_/config"


def test_every_topic_has_five_levels_of_discovery_ids():
    for topic in all_configs(device(store=True)):
        levels = topic.split("/")
        assert len(levels) == 5 and levels[0] == "homeassistant" and levels[4] == "config", topic
        assert levels[1] in ("sensor", "binary_sensor", "button", "number"), topic
        assert is_discovery_id(levels[2]) and is_discovery_id(levels[3]), topic


def test_entity_names_read_as_a_person_reads_them():
    assert discovery.entity_name("temperature") == "Temperature"
    assert discovery.entity_name("floor_temperature") == "Floor temperature"
    assert discovery.entity_name("chip_temperature") == "Chip temperature"


# ---- what every config says ------------------------------------------------


def test_every_key_is_one_home_assistant_reads():
    for dev in (device(store=True, ota=True), device(sleep_s=600, json_payload=True)):
        configs = all_configs(dev)
        for topic in configs:
            config = configs[topic]
            for key in config:
                assert key in HA_KEYS, "%s: not a Home Assistant discovery key: %r" % (topic, key)
            for key in config["dev"]:
                assert key in HA_DEVICE_KEYS, "%s: not a device key: %r" % (topic, key)
            for key in config["o"]:
                assert key in HA_ORIGIN_KEYS, "%s: not an origin key: %r" % (topic, key)


def test_every_config_names_the_device_the_firmware_and_a_unique_id():
    configs = all_configs(device(store=True, ota=True))
    ids = []
    for topic in configs:
        config = configs[topic]
        # Home Assistant 2024.3 wants the device's name in every config that
        # shares the device: else an entity may be registered before its
        # device has a name, and get an entity id without it.
        assert config["dev"]["ids"] == ["unix-node"] and config["dev"]["name"] == "unix-node", topic
        assert config["o"] == {"name": "house-sensor-node", "sw": "594e9f6-dirty"}, topic
        assert config["uniq_id"] == "unix-node_" + topic.split("/")[3], topic
        assert config["name"][:1].isupper(), config["name"]
        ids.append(config["uniq_id"])
    assert len(set(ids)) == len(ids), ids


def test_the_status_config_carries_the_whole_device():
    status = by_object(all_configs(device()))[("binary_sensor", "status")]
    assert status["dev"] == {
        "ids": ["unix-node"],
        "name": "unix-node",
        "mdl": "ESP32 DevKitC",
        "mf": "Espressif",
        "sw": "594e9f6-dirty (MicroPython 1.28.0)",
        "hw": "Generic ESP32 module with ESP32",
        "sa": "living room",
        "cns": [["mac", "aa:bb:cc:dd:ee:ff"]],
    }
    for key in by_object(all_configs(device())):
        if key != ("binary_sensor", "status"):
            assert "mdl" not in by_object(all_configs(device()))[key]["dev"], key


def test_a_board_without_wifi_has_no_connections_and_no_signal_entity():
    configs = by_object(all_configs(device(mac=None, wifi=False, machine=None, manufacturer=None, runtime=None)))
    status = configs[("binary_sensor", "status")]
    assert "cns" not in status["dev"] and "mf" not in status["dev"] and "hw" not in status["dev"]
    assert status["dev"]["sw"] == "594e9f6-dirty"
    assert ("sensor", "rssi") not in configs


# ---- the entities -----------------------------------------------------------


def test_readings_are_sensors_with_unit_class_precision_and_qos():
    configs = by_object(all_configs(device()))
    for name, unit, device_class, decimals, qos in UNIX_CHANNELS:
        config = configs[("sensor", name)]
        assert config["name"] == name[:1].upper() + name[1:]
        assert config["stat_t"] == "house/living_room/" + name
        assert config["unit_of_meas"] == unit and config["dev_cla"] == device_class
        assert config["stat_cla"] == "measurement"
        assert config["sug_dsp_prc"] == decimals
        assert config["qos"] == qos  # else Home Assistant takes a QoS 1 reading at QoS 0
        assert config["avty_t"] == "house/living_room/unix-node/status"
        assert "exp_aft" not in config and "ent_cat" not in config
        assert "val_tpl" not in config  # plain payloads need no template


def test_json_payload_readings_take_the_value_out_of_the_json():
    config = by_object(all_configs(device(json_payload=True)))[("sensor", "temperature")]
    assert config["val_tpl"] == "{{value_json.v}}"


def test_a_reading_without_unit_or_class_leaves_them_out():
    configs = by_object(all_configs(device(), (("light_level", "", None, 0, 0),)))
    config = configs[("sensor", "light_level")]
    assert "unit_of_meas" not in config and "dev_cla" not in config
    assert config["uniq_id"] == "unix-node_light_level" and config["name"] == "Light level"


def test_the_status_is_a_connectivity_sensor_with_the_report_as_attributes():
    config = by_object(all_configs(device()))[("binary_sensor", "status")]
    assert config["stat_t"] == "house/living_room/unix-node/status"
    assert config["pl_on"] == "online" and config["pl_off"] == "offline"
    assert config["dev_cla"] == "connectivity" and config["ent_cat"] == "diagnostic"
    assert config["json_attr_t"] == "house/living_room/unix-node/diagnostics"
    assert "avty_t" not in config  # offline is its state, not its absence


def test_diagnostic_sensors_read_the_report():
    configs = by_object(all_configs(device(store=True)))
    names = {}
    for key in configs:
        config = configs[key]
        if config.get("ent_cat") != "diagnostic" or key[0] != "sensor":
            continue
        assert config["stat_t"] == "house/living_room/unix-node/diagnostics", key
        template = config["val_tpl"]
        assert template.startswith("{{value_json.") and template.endswith("}}"), template
        assert template[len("{{value_json.") : -2] in REPORT_KEYS, template
        assert config["avty_t"] == "house/living_room/unix-node/status"
        names[key[1]] = config["name"]
    assert names == {
        "rssi": "Wi-Fi signal",
        "uptime": "Uptime",
        "free_heap": "Free heap",
        "reconnects": "Reconnects",
        "dropped": "Dropped readings",
        "buffered": "Buffered readings",
        "sensor_errors": "Sensor errors",
        "store_errors": "Store errors",
    }, names
    rssi = configs[("sensor", "rssi")]
    assert rssi["unit_of_meas"] == "dBm" and rssi["dev_cla"] == "signal_strength"
    uptime = configs[("sensor", "uptime")]
    assert uptime["unit_of_meas"] == "s" and uptime["dev_cla"] == "duration"
    assert uptime["stat_cla"] == "total_increasing"


def test_store_errors_only_on_a_board_with_a_store():
    assert ("sensor", "store_errors") not in by_object(all_configs(device(store=False)))


def test_diagnostic_object_ids_never_meet_a_reading():
    # A reading's object id is the sensor's prefix + a quantity its driver
    # publishes: none of those quantities ends a diagnostic's object id.
    from sensors import DRIVERS, driver_class

    quantities = []
    for name in DRIVERS:
        for quantity in driver_class(name).CHANNELS:
            quantities.append(quantity)
    for entry in discovery.DIAGNOSTICS:
        for quantity in quantities:
            assert not entry[1].endswith(quantity), (entry[1], quantity)


def test_controls_publish_to_the_command_topics():
    configs = by_object(all_configs(device()))
    restart = configs[("button", "restart")]
    assert restart["cmd_t"] == "house/living_room/unix-node/set/reboot"
    assert restart["dev_cla"] == "restart" and restart["ent_cat"] == "config" and restart["qos"] == 1
    assert "ret" not in restart  # a retained reboot is refused by the node: never ask for one
    publish_now = configs[("button", "publish_now")]
    assert publish_now["cmd_t"] == "house/living_room/unix-node/set/publish-now"
    interval = configs[("number", "interval")]
    assert interval["cmd_t"] == "house/living_room/unix-node/set/interval"
    assert (interval["min"], interval["max"], interval["step"]) == (1, 86400, 1)
    assert interval["unit_of_meas"] == "s" and interval["ent_cat"] == "config" and interval["mode"] == "box"
    assert interval["stat_t"] == "house/living_room/unix-node/diagnostics"
    assert interval["val_tpl"] == "{{value_json.interval_s}}"
    for config in (restart, publish_now, interval):
        assert config["avty_t"] == "house/living_room/unix-node/status"


def test_the_entities_of_an_always_on_board():
    keys = sorted(by_object(all_configs(device(store=True))))
    assert keys == sorted(
        [("binary_sensor", "status"), ("button", "restart"), ("button", "publish_now"), ("number", "interval")]
        + [("sensor", c[0]) for c in UNIX_CHANNELS]
        + [("sensor", d[1]) for d in discovery.DIAGNOSTICS]
    ), keys


def test_a_node_taking_updates_has_a_firmware_update_entity():
    configs = by_object(all_configs(device(ota=True)))
    update = configs[("update", "firmware")]
    # ota.updater keeps its JSON (installed_version, latest_version, title,
    # release_summary) retained here; Install goes to the host's make ota SERVE=1.
    assert update["stat_t"] == "house/living_room/unix-node/ota/installed"
    assert update["cmd_t"] == "house/living_room/unix-node/ota/install"
    assert update["pl_inst"] == "install"
    assert update["dev_cla"] == "firmware" and update["ent_cat"] == "config" and update["qos"] == 1
    assert update["avty_t"] == "house/living_room/unix-node/status"
    assert not [key for key in by_object(all_configs(device())) if key[0] == "update"]


# ---- a sleeping node --------------------------------------------------------


def test_a_sleeping_node_has_expiring_values_and_no_controls():
    configs = by_object(all_configs(device(sleep_s=600)))
    assert not [key for key in configs if key[0] in ("button", "number")]
    for key in configs:
        config = configs[key]
        if key[0] != "sensor":
            continue
        # Asleep it says offline: a wake's retained readings must show all
        # the same, so they are not tied to the status; they expire instead.
        assert "avty_t" not in config, key
        assert config["exp_aft"] == discovery.SLEEP_EXPIRE_S, key
    status = configs[("binary_sensor", "status")]
    assert "exp_aft" not in status  # asleep reads as disconnected, retained


def test_a_short_sleep_expires_within_the_sleep():
    assert discovery.expire_after_s(device(sleep_s=10)) == 10
    assert discovery.expire_after_s(device(sleep_s=45)) == discovery.SLEEP_EXPIRE_S < 45
    assert discovery.expire_after_s(device(sleep_s=0)) is None


# ---- sizes ------------------------------------------------------------------


def publish_size(topic, text):
    # A QoS 0 PUBLISH: header, remaining length (2 bytes from 128), topic length, topic, payload.
    return 1 + 2 + 2 + len(topic.encode()) + len(text.encode())


def test_every_config_fits_the_transmit_buffer_with_long_names():
    # node.node gives a DISCOVERY board a 1024-byte transmit buffer: the
    # longest names of boards/, a long version and every optional part.
    from node.build import _TX_DISCOVERY

    dev = device(
        node="esp32-living-room-window",
        room="living_room_north",
        version="v1.2.3-45-gabcdef0-dirty",
        machine="Raspberry Pi Pico W with RP2040",
        json_payload=True,
        store=True,
        ota=True,
    )
    channels = (("window_temperature", "°C", "temperature", 2, 2), ("floor_humidity", "%", "humidity", 1, 1))
    largest = 0
    for topic, text in discovery.configs(dev, channels):
        size = publish_size(topic, text)
        largest = size if size > largest else largest
        assert size <= _TX_DISCOVERY, (topic, size)
    assert largest > 512, largest  # why the buffer is larger than the node's default


# ---- the device facts node.announce gathers ---------------------------------


class FakeWlan:
    def __init__(self, mac):
        self.mac = mac

    def config(self, key):
        if key != "mac":
            raise ValueError("unknown config param")
        if isinstance(self.mac, Exception):
            raise self.mac
        return self.mac


class FakeWifi:
    def __init__(self, mac):
        self.wlan = FakeWlan(mac)


def test_mac_address_from_the_station():
    assert announce.mac_address(FakeWifi(b"\x24\x0a\xc4\x01\xab\xff")) == "24:0a:c4:01:ab:ff"


def test_no_mac_without_wifi_or_when_the_driver_fails():
    assert announce.mac_address(None) is None
    assert announce.mac_address(FakeWifi(OSError(5, "EIO"))) is None
    assert announce.mac_address(FakeWifi(b"\x00\x01")) is None


def test_manufacturer_from_the_chip():
    assert announce.manufacturer("Generic ESP32 module with ESP32") == "Espressif"
    assert announce.manufacturer("Raspberry Pi Pico W with RP2040") == "Raspberry Pi"
    assert announce.manufacturer("linux [GCC 14.2.1] version") == "MicroPython"
    assert announce.manufacturer(None) is None


def test_runtime_names_itself_with_its_version():
    name, machine = announce.runtime()
    parts = name.split(" ")
    assert len(parts) == 2 and len(parts[1].split(".")) == 3, name
    assert machine is None or isinstance(machine, str)


def test_firmware_version_from_the_deployed_file_else_dev():
    assert announce.firmware_version() == "dev"  # none on the test path

    class Deployed:
        VERSION = "594e9f6-dirty"

    sys.modules["firmware_version"] = Deployed
    try:
        assert announce.firmware_version() == "594e9f6-dirty"
    finally:
        sys.modules.pop("firmware_version", None)
    assert "firmware_version" not in sys.modules  # read, then let go: no RAM kept
