# The node's parts with no broker: fixed-point formatting, the offline ring
# and Home Assistant discovery configs (the board-file checks are in
# test_config, Wi-Fi in test_wifi). Runs on CPython, the Unix port and the
# 32-bit runtime.
import json
import sys

import support
from node import discovery
from node.fixed import format_fixed
from node.ring import Ring


def test_the_node_does_not_load_the_broker_half_of_the_codec():
    # mqtt.broker_codec is heap a board would spend on code it never runs.
    if not support.on_micropython():
        support.skip("one process runs every test on CPython: modules are already loaded")
    import node.node  # noqa: F401 - loads the node and the client, as firmware/main.py does

    assert "mqtt.client" in sys.modules
    assert "mqtt.broker_codec" not in sys.modules


# ---- fixed-point numbers -------------------------------------------------

FIXED_CASES = (
    # value, decimals, text
    (0, 0, b"0"),
    (0, 2, b"0.00"),
    (5, 2, b"0.05"),  # never ".05": at least one digit before the point
    (-5, 2, b"-0.05"),
    (50, 2, b"0.50"),
    (-50, 1, b"-5.0"),
    (9, 1, b"0.9"),
    (10, 1, b"1.0"),
    (100, 2, b"1.00"),
    (2150, 2, b"21.50"),
    (-2150, 2, b"-21.50"),
    (10132, 1, b"1013.2"),
    (99999, 3, b"99.999"),
    (-1, 0, b"-1"),
    (7, 0, b"7"),
    (123456789, 0, b"123456789"),
    (-987654321, 4, b"-98765.4321"),
    (1 << 40, 0, b"1099511627776"),
    (10**17, 2, b"1000000000000000.00"),
)


def test_format_fixed_writes_plain_text():
    buf = bytearray(24)
    for value, decimals, text in FIXED_CASES:
        n = format_fixed(buf, 0, value, decimals)
        assert bytes(buf[:n]) == text, (value, decimals, bytes(buf[:n]), text)


def test_format_fixed_writes_at_offset_and_touches_nothing_else():
    buf = bytearray(b"xxxxxxxxxxxxxxxx")
    n = format_fixed(buf, 5, -2150, 2)
    assert n == 6
    assert bytes(buf) == b"xxxxx-21.50xxxxx"


def test_format_fixed_exact_fit_is_enough():
    buf = bytearray(5)
    assert format_fixed(buf, 0, -5, 2) == 5
    assert bytes(buf) == b"-0.05"
    buf = bytearray(3)
    assert format_fixed(buf, 0, 999, 0) == 3
    assert bytes(buf) == b"999"


def _too_small(buf, offset, value, decimals):
    try:
        format_fixed(buf, offset, value, decimals)
    except ValueError as e:
        assert "%d bytes" % len(buf) in str(e), str(e)
        return
    raise AssertionError("no ValueError for %r in %d bytes at %d" % (value, len(buf), offset))


def test_format_fixed_buffer_too_small_raises_valueerror():
    _too_small(bytearray(4), 0, 12345, 0)
    _too_small(bytearray(4), 0, -5, 2)  # "-0.05" is 5 bytes
    _too_small(bytearray(4), 0, 5, 4)  # "0.0005"
    _too_small(bytearray(8), 4, 12345, 0)  # fits the buffer, not what is left of it
    _too_small(bytearray(0), 0, 0, 0)


def _format_many(buf):
    total = 0
    for value in range(-3000, 3000, 7):
        total += format_fixed(buf, 0, value, 2)
        total += format_fixed(buf, 0, value, 0)
    return total


def test_format_fixed_allocates_nothing():
    buf = bytearray(24)
    _format_many(buf)  # warm-up
    assert support.allocated_by(_format_many, buf) == 0
    assert support.heap_locked(_format_many, buf) > 0


# ---- the offline ring ----------------------------------------------------


def drained(ring):
    out = []
    for _ in range(ring.capacity + 1):
        i = ring.oldest()
        if i < 0:
            break
        out.append((ring.channel[i], ring.value[i], ring.taken[i]))
        ring.pop()
    assert ring.count == 0
    return out


def test_ring_keeps_order():
    ring = Ring(4)
    ring.push(0, 2150)
    ring.push(1, 450, 1700000000)
    ring.push(0, 2151)
    assert ring.count == 3
    assert ring.dropped == 0
    assert drained(ring) == [(0, 2150, 0), (1, 450, 1700000000), (0, 2151, 0)]


def test_ring_wraps_around():
    ring = Ring(4)
    for v in (1, 2, 3):
        ring.push(0, v)
    ring.pop()
    ring.pop()
    for v in (4, 5, 6):  # storage index wraps past the end
        ring.push(1, v)
    assert ring.count == 4
    assert [v for _, v, _ in drained(ring)] == [3, 4, 5, 6]
    assert ring.dropped == 0
    for round_ in range(10):  # many laps keep order
        ring.push(0, round_)
        ring.push(0, round_ + 100)
        assert [v for _, v, _ in drained(ring)] == [round_, round_ + 100]


def test_ring_full_drops_oldest_and_counts():
    ring = Ring(3)
    for v in range(1, 8):
        ring.push(v % 2, v)
    assert ring.count == 3
    assert ring.dropped == 4
    assert drained(ring) == [(1, 5, 0), (0, 6, 0), (1, 7, 0)]
    ring.push(0, 8)  # dropping does not survive a drain as a bad state
    assert drained(ring) == [(0, 8, 0)]
    assert ring.dropped == 4


def test_ring_pop_on_empty_does_nothing():
    ring = Ring(2)
    assert ring.oldest() == -1
    ring.pop()
    assert ring.count == 0
    assert ring.oldest() == -1
    ring.push(0, 1)
    ring.pop()
    ring.pop()
    assert ring.count == 0
    ring.push(0, 2)
    assert drained(ring) == [(0, 2, 0)]


def test_ring_capacity_must_be_positive():
    for capacity in (0, -1):
        try:
            Ring(capacity)
        except ValueError as e:
            assert repr(capacity) in str(e)
            continue
        raise AssertionError("Ring(%d) accepted" % capacity)


def _cycle_ring(ring):
    for v in range(200):
        ring.push(v & 3, v)
        if v & 1:
            ring.pop()
    while ring.count:
        ring.pop()


def test_ring_push_and_pop_allocate_nothing():
    ring = Ring(16)
    _cycle_ring(ring)
    assert support.allocated_by(_cycle_ring, ring) == 0
    support.heap_locked(_cycle_ring, ring)


# ---- Home Assistant discovery --------------------------------------------

# Home Assistant's documented abbreviations, for the keys a sensor config may use.
HA_SENSOR_KEYS = {
    "name": "name",
    "uniq_id": "unique_id",
    "stat_t": "state_topic",
    "stat_cla": "state_class",
    "avty_t": "availability_topic",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "dev": "device",
    "unit_of_meas": "unit_of_measurement",
    "dev_cla": "device_class",
    "val_tpl": "value_template",
    "exp_aft": "expire_after",
    "sug_dsp_prc": "suggested_display_precision",
}
HA_DEVICE_KEYS = {
    "ids": "identifiers",
    "name": "name",
    "mdl": "model",
    "mf": "manufacturer",
    "sa": "suggested_area",
    "sw": "sw_version",
    "hw": "hw_version",
}
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def is_discovery_id(text):
    # <node_id> and <object_id>: only [a-zA-Z0-9_-], and not empty.
    if not text:
        return False
    for c in text:
        if c not in ID_CHARS:
            return False
    return True


def check_topic(topic, node_id, object_id):
    levels = topic.split("/")
    assert len(levels) == 5, topic
    assert levels[0] == "homeassistant" and levels[1] == "sensor" and levels[4] == "config", topic
    assert is_discovery_id(levels[2]) and is_discovery_id(levels[3]), topic
    assert levels[2] == node_id and levels[3] == object_id, topic


def temperature_config(**changes):
    args = {
        "node": "unix-node",
        "room": "living_room",
        "sensor_name": "floor_temperature",
        "state_topic": "house/living_room/floor_temperature",
        "unit": "°C",
        "device_class": "temperature",
        "status_topic": "house/living_room/unix-node/status",
        "json_payload": False,
        "model": "ESP32 DevKitC",
    }
    for key in changes:
        args[key] = changes[key]
    text = discovery.config_payload(
        args["node"],
        args["room"],
        args["sensor_name"],
        args["state_topic"],
        args["unit"],
        args["device_class"],
        args["status_topic"],
        args["json_payload"],
        args["model"],
    )
    return text, json.loads(text)


def test_discovery_topic_is_homeassistant_sensor_node_object_config():
    check_topic(discovery.config_topic("unix-node", "temperature"), "unix-node", "temperature")
    check_topic(discovery.config_topic("pico-bedroom", "window_humidity"), "pico-bedroom", "window_humidity")


def test_discovery_topic_ids_replace_other_characters():
    check_topic(discovery.config_topic("my node.1", "floor temp/x+#"), "my_node_1", "floor_temp_x__")


def test_discovery_topic_ids_are_ascii_on_every_runtime():
    # The class [a-zA-Z0-9_-] is ASCII: a node named for a German kitchen
    # must not put 'ü' (or a superscript digit) into a discovery topic.
    topic = discovery.config_topic("küche-1", "temp²")
    levels = topic.split("/")
    assert is_discovery_id(levels[2]) and is_discovery_id(levels[3]), topic
    assert topic == "homeassistant/sensor/k_che-1/temp_/config", topic


def test_discovery_payload_has_home_assistant_keys():
    text, cfg = temperature_config()
    for key in cfg:
        assert key in HA_SENSOR_KEYS, "not a Home Assistant sensor key: %r" % key
    for key in cfg["dev"]:
        assert key in HA_DEVICE_KEYS, "not a Home Assistant device key: %r" % key
    assert cfg["stat_t"] == "house/living_room/floor_temperature"  # required for an MQTT sensor
    assert cfg["avty_t"] == "house/living_room/unix-node/status"
    assert cfg["uniq_id"] == "unix-node_floor_temperature"
    assert cfg["unit_of_meas"] == "°C"
    assert cfg["dev_cla"] == "temperature"
    assert cfg["stat_cla"] == "measurement"
    assert cfg["name"] == "floor temperature"
    assert cfg["dev"]["ids"] == ["unix-node"]
    assert cfg["dev"]["name"] == "unix-node"
    assert cfg["dev"]["mdl"] == "ESP32 DevKitC"
    assert cfg["dev"]["sa"] == "living room"
    # payload_available / payload_not_available default to online / offline,
    # which is what the node sends: leaving them out must stay correct.
    assert "pl_avail" not in cfg and "pl_not_avail" not in cfg
    assert "val_tpl" not in cfg  # plain payloads need no template


def test_discovery_payload_options():
    _, cfg = temperature_config(json_payload=True)
    assert cfg["val_tpl"] == "{{ value_json.v }}"
    _, cfg = temperature_config(unit="", device_class=None, sensor_name="light_level")
    assert "unit_of_meas" not in cfg and "dev_cla" not in cfg
    assert cfg["uniq_id"] == "unix-node_light_level"


def test_discovery_unique_ids_differ_per_channel_and_node():
    ids = []
    for node in ("unix-node", "pico-bedroom"):
        for name in ("temperature", "humidity", "floor_temperature"):
            _, cfg = temperature_config(node=node, sensor_name=name)
            ids.append(cfg["uniq_id"])
    assert len(set(ids)) == len(ids), ids


def test_discovery_config_fits_one_inflight_slot():
    # Published at QoS 1, the whole PUBLISH must fit MAX_PACKET (512 by
    # default): the longest names of the boards in boards/, JSON payloads.
    text, _ = temperature_config(
        node="esp32-living-room",
        sensor_name="floor_temperature",
        status_topic="house/living_room/esp32-living-room/status",
        json_payload=True,
    )
    topic = discovery.config_topic("esp32-living-room", "floor_temperature")
    size = 1 + 2 + 2 + len(topic.encode()) + 2 + len(text.encode())  # header, length, topic, packet id, payload
    assert size <= 512, size
