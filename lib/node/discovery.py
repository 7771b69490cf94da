# Home Assistant MQTT discovery: one retained config per sensor channel
# under homeassistant/sensor/<node>/<sensor>/config, so the node shows up in
# Home Assistant with no configuration. Built once per connect, off the hot path.

import json

DISCOVERY_PREFIX = "homeassistant"


def object_id(text):
    # Discovery topic levels allow only [a-zA-Z0-9_-].
    # ASCII only, compared by range: str.isalpha() takes "ü" on CPython and not on MicroPython.
    return "".join(c if "a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c in "_-" else "_" for c in text)


def config_topic(node, sensor_name):
    return "%s/sensor/%s/%s/config" % (DISCOVERY_PREFIX, object_id(node), object_id(sensor_name))


def config_payload(node, room, sensor_name, state_topic, unit, device_class, status_topic, json_payload, model):
    # Home Assistant's documented abbreviations keep a config small enough
    # for one in-flight slot. payload_available / payload_not_available are
    # left out: their defaults are the "online" / "offline" this node sends.
    config = {
        "name": sensor_name.replace("_", " "),
        "uniq_id": "%s_%s" % (object_id(node), object_id(sensor_name)),
        "stat_t": state_topic,
        "stat_cla": "measurement",
        "avty_t": status_topic,
        "dev": {
            "ids": [object_id(node)],
            "name": node,
            "mdl": model,
            "sa": room.replace("_", " "),
        },
    }
    if unit:
        config["unit_of_meas"] = unit
    if device_class:
        config["dev_cla"] = device_class
    if json_payload:
        config["val_tpl"] = "{{ value_json.v }}"
    return json.dumps(config, separators=(",", ":"))
