# Home Assistant MQTT discovery, as Home Assistant 2024.3 reads it: one
# retained config per entity under
# homeassistant/<component>/<node>/<object>/config, so the node shows up in
# Home Assistant with no configuration. Plain functions from what the node
# knows to (topic, JSON text); no I/O (node.announce publishes them). Built
# at connect and when Home Assistant restarts, never on the hot path, and
# loaded only on a board with DISCOVERY on.
#
# Keys are Home Assistant's documented abbreviations (its
# components/mqtt/abbreviations.py: "stat_t" for state_topic, "dev" for
# device, "o" for origin, ...), which keep a config within the node's
# transmit buffer. The base topic "~" is not used: tools/monitor.py reads
# the state topics of these configs as they are.

import json

DISCOVERY_PREFIX = "homeassistant"
ORIGIN = "house-sensor-node"  # the firmware, in every config's origin block

# A sleeping node's readings are current for this long after they arrive
# (or for the sleep, if that is shorter): long enough for Home Assistant to
# take in a wake's retained readings, short enough that nothing is shown as
# current while the node sleeps or after its battery died.
SLEEP_EXPIRE_S = 30

# The node's own figures, as sensors read from its diagnostics report
# (JSON on <prefix>/<room>/<node>/diagnostics): key in the report, object id,
# name, unit, device class, state class, and what the board needs for it
# ("wifi": a Wi-Fi board; "store": a board with a STORE; None: every board).
# The object ids end in no quantity a driver publishes, so they never meet a
# reading's object id.
DIAGNOSTICS = (
    ("rssi", "rssi", "Wi-Fi signal", "dBm", "signal_strength", "measurement", "wifi"),
    ("uptime_s", "uptime", "Uptime", "s", "duration", "total_increasing", None),
    ("free_heap", "free_heap", "Free heap", "B", "data_size", "measurement", None),
    ("reconnects", "reconnects", "Reconnects", None, None, "total_increasing", None),
    ("dropped", "dropped", "Dropped readings", None, None, "total_increasing", None),
    ("buffered", "buffered", "Buffered readings", None, None, "measurement", None),
    ("sensor_errors", "sensor_errors", "Sensor errors", None, None, "total_increasing", None),
    ("store_errors", "store_errors", "Store errors", None, None, "total_increasing", "store"),
)
INTERVAL_MAX_S = 86400  # node.node's `interval` command takes 1 to this


class Device:
    """The node as Home Assistant's device registry sees it, and the topics
    its entities use. version: the firmware's (git describe at deploy time,
    "dev" on the Unix port); runtime: e.g. "MicroPython 1.28.0"; machine:
    what MicroPython says it runs on ("Generic ESP32 module with ESP32");
    mac: "aa:bb:cc:dd:ee:ff" or None (a board without Wi-Fi); sleep_s: the
    board's DEEP_SLEEP_S (0: always on)."""

    def __init__(
        self,
        node,
        room,
        prefix,
        model,
        version,
        runtime=None,
        machine=None,
        manufacturer=None,
        mac=None,
        sleep_s=0,
        json_payload=False,
        wifi=False,
        store=False,
        ota=False,
    ):
        self.node = node
        self.room = room
        self.model = model
        self.version = version
        self.runtime = runtime
        self.machine = machine
        self.manufacturer = manufacturer
        self.mac = mac
        self.sleep_s = sleep_s
        self.json_payload = json_payload
        self.wifi = wifi
        self.store = store
        self.ota = ota  # takes over-the-air updates (lib/ota)
        self.readings = "%s/%s/" % (prefix, room)  # + the channel's name
        base = "%s/%s/%s/" % (prefix, room, node)
        self.status_topic = base + "status"
        self.diagnostics_topic = base + "diagnostics"
        self.command_prefix = base + "set/"
        self.ota_prefix = base + "ota/"


def object_id(text):
    # Discovery topic levels allow only [a-zA-Z0-9_-].
    # ASCII only, compared by range: str.isalpha() takes "ü" on CPython and not on MicroPython.
    return "".join(c if "a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "_-" else "_" for c in text)


def config_topic(node, name, component="sensor"):
    return "%s/%s/%s/%s/config" % (DISCOVERY_PREFIX, component, object_id(node), object_id(name))


def entity_name(channel_name):
    """ "floor_temperature" -> "Floor temperature": the entity's own name, as
    a person reads it. Home Assistant puts the device's name in front."""
    text = channel_name.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else channel_name


def expire_after_s(device):
    """Seconds a sleeping node's values stay current; None: always on (its
    entities follow the status topic instead)."""
    if not device.sleep_s:
        return None
    return SLEEP_EXPIRE_S if device.sleep_s > SLEEP_EXPIRE_S else device.sleep_s


def _common(device, name, object_name, full_device=False):
    return {
        "name": name,
        "uniq_id": "%s_%s" % (object_id(device.node), object_id(object_name)),
        # Every config names the device (Home Assistant 2024.3 wants its name
        # in each); the rest of the device's facts go in one config (the
        # status sensor's): the registry merges them, and each config stays
        # within the node's transmit buffer.
        "dev": _device_block(device, full_device),
        "o": {"name": ORIGIN, "sw": device.version},
    }


def _device_block(device, full):
    block = {"ids": [object_id(device.node)], "name": device.node}
    if not full:
        return block
    block["mdl"] = device.model
    if device.manufacturer:
        block["mf"] = device.manufacturer
    block["sw"] = "%s (%s)" % (device.version, device.runtime) if device.runtime else device.version
    if device.machine:
        block["hw"] = device.machine
    block["sa"] = device.room.replace("_", " ")
    if device.mac:
        block["cns"] = [["mac", device.mac]]
    return block


def _availability(device, config):
    """An always-on node's entities are unavailable when its status says
    offline (its last will). A sleeping node's are not tied to it (asleep, it
    says offline, and a first wake's retained readings would then never
    show): they expire instead."""
    expire = expire_after_s(device)
    if expire is None:
        config["avty_t"] = device.status_topic
    else:
        config["exp_aft"] = expire


def _text(config):
    return json.dumps(config, separators=(",", ":"))


def reading_config(device, channel_name, unit, device_class, decimals, qos):
    """(topic, payload) of one reading's sensor: <prefix>/<room>/<channel>."""
    config = _common(device, entity_name(channel_name), channel_name)
    config["stat_t"] = device.readings + channel_name
    config["stat_cla"] = "measurement"
    config["qos"] = qos  # Home Assistant subscribes at the QoS the node publishes at
    if unit:
        config["unit_of_meas"] = unit
    if device_class:
        config["dev_cla"] = device_class
    config["sug_dsp_prc"] = decimals
    if device.json_payload:
        config["val_tpl"] = "{{value_json.v}}"
    _availability(device, config)
    return config_topic(device.node, channel_name), _text(config)


def status_config(device):
    """(topic, payload) of the connectivity sensor on the status topic,
    with the whole device block and the diagnostics report as attributes
    (its figures without an entity of their own: published, commands_dropped,
    qos2_downgraded). No availability of its own: offline is its state."""
    config = _common(device, "Status", "status", full_device=True)
    config["stat_t"] = device.status_topic
    config["pl_on"] = "online"
    config["pl_off"] = "offline"
    config["dev_cla"] = "connectivity"
    config["ent_cat"] = "diagnostic"
    config["json_attr_t"] = device.diagnostics_topic
    config["qos"] = 1
    return config_topic(device.node, "status", "binary_sensor"), _text(config)


def diagnostic_configs(device):
    """(topic, payload) of each of the diagnostics report's sensors this
    board has, one at a time."""
    for key, object_name, name, unit, device_class, state_class, needs in DIAGNOSTICS:
        if (needs == "wifi" and not device.wifi) or (needs == "store" and not device.store):
            continue
        config = _common(device, name, object_name)
        config["stat_t"] = device.diagnostics_topic
        config["val_tpl"] = "{{value_json.%s}}" % key
        config["ent_cat"] = "diagnostic"
        config["stat_cla"] = state_class
        if unit:
            config["unit_of_meas"] = unit
        if device_class:
            config["dev_cla"] = device_class
        _availability(device, config)
        yield config_topic(device.node, object_name), _text(config)


def control_configs(device):
    """(topic, payload) of each of the node's controls, which publish to its
    existing command topics (node.node checks them as any command): restart,
    publish now, and the interval. A sleeping node has none (asleep, it
    takes no command)."""
    if device.sleep_s:
        return
    for object_name, name, command, device_class, category in (
        ("restart", "Restart", "reboot", "restart", "config"),
        ("publish_now", "Publish now", "publish-now", None, None),
    ):
        config = _common(device, name, object_name)
        config["cmd_t"] = device.command_prefix + command
        config["qos"] = 1
        if device_class:
            config["dev_cla"] = device_class
        if category:
            config["ent_cat"] = category
        _availability(device, config)
        yield config_topic(device.node, object_name, "button"), _text(config)
    config = _common(device, "Interval", "interval")
    config["cmd_t"] = device.command_prefix + "interval"
    config["stat_t"] = device.diagnostics_topic
    config["val_tpl"] = "{{value_json.interval_s}}"
    config["min"] = 1
    config["max"] = INTERVAL_MAX_S
    config["step"] = 1
    config["mode"] = "box"
    config["unit_of_meas"] = "s"
    config["dev_cla"] = "duration"
    config["ent_cat"] = "config"
    config["qos"] = 1
    _availability(device, config)
    yield config_topic(device.node, "interval", "number"), _text(config)


def update_config(device):
    """(topic, payload) of the firmware's update entity: its state is the
    JSON ota.updater keeps retained on ota/installed (installed_version, and
    the latest_version, title and release_summary the host offers); Install
    publishes `install` on ota/install, which `make ota SERVE=1` answers."""
    config = _common(device, "Firmware", "firmware")
    config["stat_t"] = device.ota_prefix + "installed"
    config["cmd_t"] = device.ota_prefix + "install"
    config["pl_inst"] = "install"
    config["dev_cla"] = "firmware"
    config["ent_cat"] = "config"
    config["qos"] = 1
    _availability(device, config)
    return config_topic(device.node, "firmware", "update"), _text(config)


def configs(device, channels):
    """(topic, payload) of every entity of the node, one at a time (a board
    holds one config in RAM, not all of them). channels: (name, unit,
    device class, decimals, qos) of each reading."""
    yield status_config(device)
    for name, unit, device_class, decimals, qos in channels:
        yield reading_config(device, name, unit, device_class, decimals, qos)
    yield from diagnostic_configs(device)
    yield from control_configs(device)
    if device.ota:
        yield update_config(device)
