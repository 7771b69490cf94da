# The node's parts with no broker: fixed-point formatting, the offline ring,
# the board-file checks, Home Assistant discovery configs and Wi-Fi
# association (against the Unix port's fake `network`, on synthetic ticks).
# Runs on CPython, the Unix port and the 32-bit runtime (a board's 2**30 ms
# tick period: its ticks_add refuses 2**29 ms or more).
import json
import os
import sys

import support
from compat import getenv, ticks_add, ticks_diff, ticks_ms
from node import config, discovery
from node.fixed import format_fixed
from node.ring import Ring
from node.wifi import Wifi


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


# ---- board files ---------------------------------------------------------

_ABSENT = "absent"


class FakeBoard:
    """A board module stand-in: settings as attributes."""

    def __init__(self, settings):
        for key in settings:
            if settings[key] is not _ABSENT:
                setattr(self, key, settings[key])


def board(**changes):
    settings = {
        "ROOM": "kitchen",
        "NODE": "n1",
        "BROKER": {"host": "192.0.2.1"},
        "SENSORS": [{"driver": "sim_temperature"}],
    }
    for key in changes:
        settings[key] = changes[key]
    return FakeBoard(settings)


def sensor(**changes):
    s = {"driver": "sim_temperature"}
    for key in changes:
        s[key] = changes[key]
    return s


def broker(**changes):
    b = {"host": "192.0.2.1"}
    for key in changes:
        b[key] = changes[key]
    return b


def test_config_defaults():
    if getenv("MQTT_HOST") or getenv("MQTT_PORT"):
        support.skip("MQTT_HOST / MQTT_PORT set in the environment")
    c = config.load(board())
    assert c["PREFIX"] == "house"
    assert c["ROOM"] == "kitchen"
    assert c["NODE"] == "n1"
    assert c["BUFFER"] == 64
    assert c["DIAGNOSTICS_S"] == 300
    assert c["WATCHDOG_MS"] == 0
    assert c["DEEP_SLEEP_S"] == 0
    assert c["INFLIGHT"] == 16
    assert c["MAX_PACKET"] == 512
    assert c["DISCOVERY"] is True
    assert c["PAYLOAD"] == "plain"
    assert c["SAFE_MODE_PIN"] is None
    assert c["WIFI"] is None
    assert c["BUSES"] == {}
    assert c["BROKER"] == {
        "host": "192.0.2.1",
        "port": 1883,
        "tls": False,
        "ca": None,
        "cert": None,
        "key": None,
        "keepalive_s": 30,
        "username": None,
        "password": None,
        "clean_session": False,
    }
    assert c["SENSORS"] == [
        {
            "driver": "sim_temperature",
            "bus": None,
            "pin": None,
            "params": {},
            "prefix": "",
            "period_s": 60,
            "qos": 1,
        }
    ]


def test_config_tls_default_port_buses_wifi_and_secrets():
    if getenv("MQTT_HOST") or getenv("MQTT_PORT"):
        support.skip("MQTT_HOST / MQTT_PORT set in the environment")

    class Secrets:
        WIFI_PASSWORD = "wifi secret"
        MQTT_PASSWORD = "mqtt secret"

    c = config.load(
        board(
            BROKER=broker(tls=True, username="node", ca="/ca.pem", cert="/node.pem", key="/node.key"),
            WIFI={"ssid": "house"},
            I2C={"i2c0": {"scl": 22, "sda": 21}},
            ONEWIRE={"ow0": {"pin": 4}},
            SENSORS=[sensor(driver="bme280", bus="i2c0"), sensor(driver="ds18b20", bus="ow0", prefix="floor_")],
        ),
        Secrets(),
    )
    assert c["BROKER"]["port"] == 8883
    assert (c["BROKER"]["ca"], c["BROKER"]["cert"], c["BROKER"]["key"]) == ("/ca.pem", "/node.pem", "/node.key")
    assert c["BROKER"]["username"] == "node"
    assert c["BROKER"]["password"] == "mqtt secret"
    assert c["WIFI"] == {"ssid": "house", "password": "wifi secret", "connect_timeout_s": 20}
    assert c["BUSES"] == {"i2c0": ("I2C", {"scl": 22, "sda": 21}), "ow0": ("ONEWIRE", {"pin": 4})}
    assert [s["bus"] for s in c["SENSORS"]] == ["i2c0", "ow0"]
    assert c["SENSORS"][1]["prefix"] == "floor_"


def load_error(b):
    try:
        config.load(b)
    except ValueError as e:
        return str(e)
    raise AssertionError("config.load accepted a bad board")


# (what is wrong, board, fragments the message must contain: the key, then the value)
BAD_BOARDS = (
    ("ROOM with '/'", board(ROOM="kitchen/2"), ("ROOM", "'kitchen/2'")),
    ("ROOM with '+'", board(ROOM="a+b"), ("ROOM", "'a+b'")),
    ("ROOM empty", board(ROOM=""), ("ROOM", "''")),
    ("ROOM not text", board(ROOM=5), ("ROOM", "5")),
    ("NODE with '#'", board(NODE="n#1"), ("NODE", "'n#1'")),
    ("PREFIX with '/'", board(PREFIX="house/x"), ("PREFIX", "'house/x'")),
    ("ROOM missing", board(ROOM=_ABSENT), ("ROOM",)),
    ("NODE missing", board(NODE=_ABSENT), ("NODE",)),
    ("BROKER missing", board(BROKER=_ABSENT), ("BROKER",)),
    ("SENSORS missing", board(SENSORS=_ABSENT), ("SENSORS",)),
    ("SENSORS empty", board(SENSORS=[]), ("SENSORS", "[]")),
    ("SENSORS not a list", board(SENSORS="sim_temperature"), ("SENSORS", "'sim_temperature'")),
    ("sensor not a dict", board(SENSORS=["sim_temperature"]), ("SENSORS[0]", "'sim_temperature'")),
    ("sensor without driver", board(SENSORS=[{"period_s": 5}]), ("SENSORS[0]", "'period_s'")),
    ("qos 3", board(SENSORS=[sensor(qos=3)]), ("SENSORS[0] qos", "3")),
    ("qos -1", board(SENSORS=[sensor(qos=-1)]), ("SENSORS[0] qos", "-1")),
    ("qos True", board(SENSORS=[sensor(qos=True)]), ("SENSORS[0] qos", "True")),
    ("qos '1'", board(SENSORS=[sensor(qos="1")]), ("SENSORS[0] qos", "'1'")),
    ("period 0", board(SENSORS=[sensor(period_s=0)]), ("SENSORS[0] period_s", "0")),
    ("period too long", board(SENSORS=[sensor(period_s=86401)]), ("SENSORS[0] period_s", "86401")),
    ("period '60'", board(SENSORS=[sensor(period_s="60")]), ("SENSORS[0] period_s", "'60'")),
    ("period 1.5", board(SENSORS=[sensor(period_s=1.5)]), ("SENSORS[0] period_s", "1.5")),
    ("second sensor bad", board(SENSORS=[sensor(), sensor(qos=7)]), ("SENSORS[1] qos", "7")),
    ("unknown bus", board(SENSORS=[sensor(driver="bme280", bus="i2c9")]), ("SENSORS[0] bus", "'i2c9'")),
    (
        "bus declared under another name",
        board(I2C={"i2c0": {"scl": 1, "sda": 2}}, SENSORS=[sensor(driver="bme280", bus="i2c1")]),
        ("SENSORS[0] bus", "'i2c1'"),
    ),
    ("params not a dict", board(SENSORS=[sensor(params=[1])]), ("SENSORS[0] params", "[1]")),
    ("prefix with '/'", board(SENSORS=[sensor(prefix="a/")]), ("SENSORS[0] prefix", "'a/'")),
    ("BROKER not a dict", board(BROKER="192.0.2.1"), ("BROKER", "'192.0.2.1'")),
    ("BROKER port 70000", board(BROKER=broker(port=70000)), ("BROKER port", "70000")),
    ("BROKER port 0", board(BROKER=broker(port=0)), ("BROKER port", "0")),
    ("BROKER port text", board(BROKER=broker(port="1883")), ("BROKER port", "'1883'")),
    ("BROKER keepalive -1", board(BROKER=broker(keepalive_s=-1)), ("BROKER keepalive_s", "-1")),
    ("BROKER tls 'yes'", board(BROKER=broker(tls="yes")), ("BROKER tls", "'yes'")),
    ("BROKER clean_session 1", board(BROKER=broker(clean_session=1)), ("BROKER clean_session", "1")),
    ("BROKER cert without key", board(BROKER=broker(tls=True, cert="/n.pem")), ("cert and key go together",)),
    ("BROKER key without tls", board(BROKER=broker(cert="/n.pem", key="/n.key")), ("BROKER cert", "tls")),
    ("BROKER ca not a path", board(BROKER=broker(tls=True, ca=b"/ca.pem")), ("BROKER ca", "b'/ca.pem'")),
    ("BROKER key relative", board(BROKER=broker(tls=True, cert="/n.pem", key="n.key")), ("BROKER key", "'n.key'")),
    ("BUFFER 0", board(BUFFER=0), ("BUFFER", "0")),
    ("INFLIGHT 0", board(INFLIGHT=0), ("INFLIGHT", "0")),
    ("INFLIGHT 5000", board(INFLIGHT=5000), ("INFLIGHT", "5000")),
    ("MAX_PACKET 64", board(MAX_PACKET=64), ("MAX_PACKET", "64")),
    ("DIAGNOSTICS_S -1", board(DIAGNOSTICS_S=-1), ("DIAGNOSTICS_S", "-1")),
    ("WATCHDOG_MS text", board(WATCHDOG_MS="8000"), ("WATCHDOG_MS", "'8000'")),
    ("DEEP_SLEEP_S True", board(DEEP_SLEEP_S=True), ("DEEP_SLEEP_S", "True")),
    # Waits a board's ticks_add refuses (2**29 ms, 6.2 days, or more).
    ("DEEP_SLEEP_S a week", board(DEEP_SLEEP_S=604800), ("DEEP_SLEEP_S", "604800", "2**29 ms")),
    ("DEEP_SLEEP_S 2**29 ms", board(DEEP_SLEEP_S=536871), ("DEEP_SLEEP_S", "536871", "2**29 ms")),
    ("DIAGNOSTICS_S a week", board(DIAGNOSTICS_S=604800), ("DIAGNOSTICS_S", "604800", "2**29 ms")),
    ("DIAGNOSTICS_S a day and 1 s", board(DIAGNOSTICS_S=86401), ("DIAGNOSTICS_S", "86401")),
    ("period a week", board(SENSORS=[sensor(period_s=604800)]), ("SENSORS[0] period_s", "604800", "2**29 ms")),
    ("STORE flush_s a week", board(STORE={"path": "/s", "flush_s": 604800}), ("STORE flush_s", "604800")),
    (
        "WIFI timeout a week",
        board(WIFI={"ssid": "house", "connect_timeout_s": 604800}),
        ("WIFI connect_timeout_s", "604800"),
    ),
    ("DISCOVERY 'yes'", board(DISCOVERY="yes"), ("DISCOVERY", "'yes'")),
    ("PAYLOAD 'xml'", board(PAYLOAD="xml"), ("PAYLOAD", "'xml'")),
    ("SAFE_MODE_PIN 'boot'", board(SAFE_MODE_PIN="boot"), ("SAFE_MODE_PIN", "'boot'")),
    ("SAFE_MODE_PIN 64", board(SAFE_MODE_PIN=64), ("SAFE_MODE_PIN", "64")),
    ("I2C a list", board(I2C=[0]), ("I2C", "[0]")),
    ("WIFI a string", board(WIFI="house"), ("WIFI", "'house'")),
    ("WIFI ssid not text", board(WIFI={"ssid": 5}), ("WIFI", "5")),
    (
        "WIFI timeout 0",
        board(WIFI={"ssid": "house", "connect_timeout_s": 0}),
        ("WIFI connect_timeout_s", "0"),
    ),
    ("DNS a name", board(DNS="router.lan"), ("DNS", "'router.lan'")),
    ("DNS a number", board(DNS=53), ("DNS", "53")),
    ("DNS port 0", board(DNS="192.168.1.1:0"), ("DNS port", "0")),
    ("DNS octet 256", board(DNS="192.168.1.256"), ("DNS", "'192.168.1.256'")),
    ("NTP empty", board(NTP=""), ("NTP", "''")),
    ("NTP port text", board(NTP="pool.ntp.org:ntp"), ("NTP port", "0")),
    ("NTP two ports", board(NTP="a:1:2"), ("NTP", "'a:1:2'")),
    # Misspelt settings: named, with the closest known one.
    ("BUFFER misspelt", board(BUFER=512), ("file", "'BUFER'", "did you mean 'BUFFER'")),
    ("period_s misspelt", board(SENSORS=[sensor(perod_s=30)]), ("SENSORS[0]", "'perod_s'", "'period_s'")),
    ("BROKER host misspelt", board(BROKER={"hots": "192.0.2.1"}), ("BROKER", "'hots'", "'host'")),
    ("WIFI timeout misspelt", board(WIFI={"ssid": "h", "timeout_s": 5}), ("WIFI", "'timeout_s'", "connect_timeout_s")),
    ("STORE capacity misspelt", board(STORE={"path": "/s", "capacty": 9}), ("STORE", "'capacty'", "'capacity'")),
    ("I2C pin misspelt", board(I2C={"i2c0": {"scl": 1, "sad": 2}}), ("I2C 'i2c0'", "'sad'", "'sda'")),
    ("I2C bus not a dict", board(I2C={"i2c0": 5}), ("I2C 'i2c0'", "5")),
    (
        "driver param misspelt",
        board(SENSORS=[sensor(params={"sed": 1})]),
        ("SENSORS[0] params of sim_temperature", "'sed'", "'seed'"),
    ),
    (
        "param of a driver that takes none",
        board(SENSORS=[sensor(driver="dht22", pin=4, params={"pin": 5})]),
        ("SENSORS[0] params of dht22", "'pin'", "takes none"),
    ),
)


def test_config_a_password_without_a_username_stops_at_boot_naming_both():
    class Secrets:
        MQTT_PASSWORD = "secret"

    try:
        config.load(board(), Secrets())
    except ValueError as e:
        message = str(e)
    else:
        raise AssertionError("a password without a username was taken")
    assert "MQTT_PASSWORD" in message and "username" in message, message
    # With the username it loads.
    assert config.load(board(BROKER=broker(username="n1")), Secrets())["BROKER"]["password"] == "secret"


def test_config_takes_every_setting_the_boards_use_and_lower_case_names():
    # A board file's imports and helpers are not settings.
    c = config.load(board(MODEL="ESP32-DevKitC", ARCH="xtensawin", helper_value=3))
    assert c["ROOM"] == "kitchen"


def test_config_dns_and_ntp_take_host_and_optional_port():
    c = config.load(board(DNS="192.168.1.1", NTP="pool.ntp.org"))
    assert c["DNS"] == ("192.168.1.1", 53) and c["NTP"] == ("pool.ntp.org", 123)
    c = config.load(board(DNS="127.0.0.1:5353", NTP="127.0.0.1:1123"))
    assert c["DNS"] == ("127.0.0.1", 5353) and c["NTP"] == ("127.0.0.1", 1123)
    c = config.load(board())
    assert c["DNS"] is None and c["NTP"] is None


def test_config_every_bad_value_is_a_valueerror_naming_key_and_value():
    failures = []
    for what, b, fragments in BAD_BOARDS:
        try:
            message = load_error(b)
        except AssertionError:
            failures.append("%s: accepted" % what)
            continue
        for fragment in fragments:
            if fragment not in message:
                failures.append("%s: %r not in %r" % (what, fragment, message))
    assert not failures, "\n".join(failures)


def test_config_longest_waits_fit_a_boards_ticks_add():
    # Each setting the node turns into a wait, at the most config allows:
    # below 2**29 ms, so ticks_add takes it on a board (and on compat, which
    # refuses what a board refuses) and ticks_diff can measure it.
    c = config.load(
        board(
            DIAGNOSTICS_S=86400,
            DEEP_SLEEP_S=536870,
            WATCHDOG_MS=3600000,
            BROKER=broker(keepalive_s=65535),
            WIFI={"ssid": "house", "connect_timeout_s": 600},
            STORE={"path": "/s", "flush_s": 86400},
            SENSORS=[sensor(period_s=86400)],
        )
    )
    waits_ms = (
        c["DIAGNOSTICS_S"] * 1000,
        c["DEEP_SLEEP_S"] * 1000,
        c["WATCHDOG_MS"],
        c["BROKER"]["keepalive_s"] * 1000,
        c["WIFI"]["connect_timeout_s"] * 1000,
        c["STORE"]["flush_s"] * 1000,
        c["SENSORS"][0]["period_s"] * 1000,
    )
    before_wrap = ticks_add(0, -1)
    for ms in waits_ms:
        assert ms < 1 << 29, ms
        assert ticks_diff(ticks_add(before_wrap, ms), before_wrap) == ms


def test_config_broker_without_host_is_named():
    if getenv("MQTT_HOST"):
        support.skip("MQTT_HOST set in the environment")
    message = load_error(board(BROKER={"port": 1883}))
    assert "BROKER host" in message and "None" in message, message


def test_config_float_qos_is_rejected():
    # 1.0 == 1, so a membership test lets it through; the session would then
    # fail on the first publish, long after boot.
    message = load_error(board(SENSORS=[sensor(qos=1.0)]))
    assert "SENSORS[0] qos" in message and "1.0" in message, message


def test_config_unknown_driver_fails_at_load_naming_key_and_value():
    # Caught by config.load, main.py stops with "board file error"; caught
    # only when the Node is built, the supervisor loop restarts it forever.
    message = load_error(board(SENSORS=[sensor(driver="bme999")]))
    assert "SENSORS[0]" in message and "'bme999'" in message, message


def _with_env(values, fn):
    # CPython only: the Unix port cannot unset a variable.
    saved = {}
    for key in values:
        saved[key] = os.environ.get(key)
        if values[key] is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = values[key]
    try:
        return fn()
    finally:
        for key in saved:
            if saved[key] is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = saved[key]


def test_config_mqtt_host_and_port_from_environment_win():
    if support.on_micropython():
        support.skip("environment overrides are tested on CPython")
    b = board(BROKER=broker(port=1883))
    c = _with_env({"MQTT_HOST": "127.0.0.1", "MQTT_PORT": "18830"}, lambda: config.load(b))
    assert c["BROKER"]["host"] == "127.0.0.1"
    assert c["BROKER"]["port"] == 18830
    c = _with_env({"MQTT_HOST": None, "MQTT_PORT": None}, lambda: config.load(b))
    assert c["BROKER"]["host"] == "192.0.2.1"
    assert c["BROKER"]["port"] == 1883
    c = _with_env({"MQTT_HOST": "127.0.0.1", "MQTT_PORT": None}, lambda: config.load(board(BROKER={})))
    assert c["BROKER"]["host"] == "127.0.0.1"
    message = _with_env({"MQTT_PORT": "70000"}, lambda: load_error(b))
    assert "port" in message and "70000" in message, message


def test_config_bad_mqtt_port_in_environment_is_named():
    if support.on_micropython():
        support.skip("environment overrides are tested on CPython")
    message = _with_env({"MQTT_PORT": "http"}, lambda: load_error(board()))
    assert "MQTT_PORT" in message and "'http'" in message, message


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


# ---- Wi-Fi, against the Unix port's fake network module -------------------


def fake_network():
    """firmware/unix_fakes/network.py (not on the harness's MICROPYPATH)."""
    roots = [""]
    parts = __file__.rsplit("/", 3)
    if len(parts) == 4:
        roots.insert(0, parts[0] + "/")
    for root in roots:
        path = root + "firmware/unix_fakes"
        try:
            os.stat(path + "/network.py")
        except OSError:
            continue
        sys.path.insert(0, path)
        try:
            import network
        finally:
            sys.path.remove(path)
        return network
    raise AssertionError("firmware/unix_fakes/network.py not found from %r" % __file__)


class FakeClock:
    """Stands in for the fake's `time`: association time follows the same
    synthetic ticks the test hands to Wifi.poll."""

    def __init__(self, now):
        self.now = now

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, end, start):
        return ticks_diff(end, start)


def with_fake_network(down, association_ms, fn):
    network = fake_network()
    saved = (network.time, network.down, network.association_ms)
    clock = FakeClock(ticks_ms())
    network.time = clock
    network.down = down
    network.association_ms = association_ms
    try:
        return fn(network, clock)
    finally:
        network.time, network.down, network.association_ms = saved


def make_wifi(network, clock, logs, timeout_ms=1000, start=None):
    """A Wifi on the fake network, its synthetic clock at start (default:
    now on the real clock)."""
    clock.now = ticks_ms() if start is None else start
    return Wifi("house", "secret", timeout_ms, network_module=network, log=logs.append)


def advance(clock, ms, step_ms, poll=None):
    """Moves the synthetic clock ms forward in steps of step_ms (a board's
    ticks_add takes less than 2**29 ms at once), calling poll(now) after each."""
    while ms > 0:
        step = step_ms if step_ms < ms else ms
        clock.now = ticks_add(clock.now, step)
        ms -= step
        if poll is not None:
            poll(clock.now)


def _associates_within_deadline(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs)
    t0 = clock.now
    assert wifi.poll(t0) is False  # starts associating, returns at once
    assert wifi.wlan.connect_calls == 1
    assert wifi.wlan.active() is True
    for dt in (1, 100, 199):
        clock.now = ticks_add(t0, dt)
        assert wifi.poll(clock.now) is False
    clock.now = ticks_add(t0, 200)
    assert wifi.poll(clock.now) is True
    assert wifi.is_up()
    assert wifi.reconnects == 1 and wifi.failures == 0
    assert wifi.wlan.connect_calls == 1
    assert logs == ["wifi: up on 'house'"], logs
    assert wifi.rssi() == -55
    clock.now = ticks_add(t0, 60000)
    assert wifi.poll(clock.now) is True  # stays up, no new association
    assert wifi.wlan.connect_calls == 1 and wifi.reconnects == 1


def test_wifi_associates_within_deadline():
    with_fake_network(False, 200, _associates_within_deadline)


def _fails_then_retries_with_backoff(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=1000)
    t0 = clock.now
    assert wifi.poll(t0) is False
    assert wifi.wlan.connect_calls == 1
    clock.now = ticks_add(t0, 999)
    assert wifi.poll(clock.now) is False
    assert wifi.failures == 0
    clock.now = ticks_add(t0, 1000)  # the deadline
    assert wifi.poll(clock.now) is False
    assert wifi.failures == 1
    assert "no association with 'house' within 1000 ms" in logs[-1], logs
    failed_at = clock.now
    # Backoff(1000, ...): the first wait is 500..1000 ms; nothing before it.
    for dt in (0, 1, 250, 499):
        clock.now = ticks_add(failed_at, dt)
        assert wifi.poll(clock.now) is False
        assert wifi.wlan.connect_calls == 1, dt
    retried_at = None
    for dt in range(500, 1001, 10):
        clock.now = ticks_add(failed_at, dt)
        wifi.poll(clock.now)
        if wifi.wlan.connect_calls == 2:
            retried_at = dt
            break
    assert retried_at is not None, "no second wlan.connect within 1000 ms of the failure"
    # The second failure waits longer: 1000..2000 ms.
    second_start = clock.now
    clock.now = ticks_add(second_start, 1000)
    wifi.poll(clock.now)
    assert wifi.failures == 2
    failed_at = clock.now
    clock.now = ticks_add(failed_at, 999)
    wifi.poll(clock.now)
    assert wifi.wlan.connect_calls == 2
    # The access point comes back: the next attempt associates and resets the backoff.
    network.down = False
    network.association_ms = 50
    for dt in range(1000, 2101, 10):
        clock.now = ticks_add(failed_at, dt)
        if wifi.poll(clock.now):
            break
    assert wifi.is_up(), "not up within 2100 ms after the access point came back"
    assert wifi.wlan.connect_calls == 3
    assert wifi.reconnects == 1 and wifi.failures == 2
    assert wifi.backoff.attempts == 0
    assert logs[-1] == "wifi: up on 'house'", logs


def test_wifi_failure_backs_off_and_calls_connect_again_later():
    with_fake_network(True, 50, _fails_then_retries_with_backoff)


def _never_blocks(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=2000)
    started = ticks_ms()
    t = clock.now
    for _ in range(3000):  # ten synthetic minutes in 200 ms steps
        t = ticks_add(t, 200)
        clock.now = t
        assert wifi.poll(t) is False
    elapsed = ticks_diff(ticks_ms(), started)
    assert elapsed < 2000, "3000 polls took %d ms of real time" % elapsed
    # Capped backoff: attempts keep coming, but not every poll.
    assert 5 <= wifi.wlan.connect_calls <= 200, wifi.wlan.connect_calls
    assert wifi.failures >= wifi.wlan.connect_calls - 1


def test_wifi_poll_never_blocks_while_association_fails():
    with_fake_network(True, 50, _never_blocks)


def _slow_association(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=1000)
    t0 = clock.now
    wifi.poll(t0)
    clock.now = ticks_add(t0, 1000)
    assert wifi.poll(clock.now) is False  # 5 s association, 1 s deadline: give up
    assert wifi.failures == 1
    clock.now = ticks_add(t0, 5000)
    assert not wifi.wlan.isconnected()  # the attempt was cancelled, not left running


def test_wifi_association_slower_than_deadline_is_abandoned():
    with_fake_network(False, 5000, _slow_association)


def _up(network, clock, wifi):
    network.down = False
    for _ in range(100):
        clock.now = ticks_add(clock.now, 10)
        if wifi.poll(clock.now):
            return True
    return False


def _reassociates_after(network, clock, up_for_ms, poll_every_ms):
    logs = []
    wifi = make_wifi(network, clock, logs)
    assert _up(network, clock, wifi)
    assert wifi.wlan.connect_calls == 1

    def stays_up(now):
        assert wifi.poll(now) is True
        assert wifi.wlan.connect_calls == 1

    # up_for_ms of service, the node's loop polling all along.
    advance(clock, up_for_ms, poll_every_ms, stays_up)
    # Then the access point drops us.
    network.down = True
    clock.now = ticks_add(clock.now, 10)
    assert wifi.poll(clock.now) is False
    assert wifi.wlan.connect_calls == 2, "no new association attempt after %d ms up" % up_for_ms
    assert _up(network, clock, wifi)
    assert wifi.reconnects == 2


def test_wifi_reassociates_at_once_when_the_link_drops():
    with_fake_network(False, 50, lambda network, clock: _reassociates_after(network, clock, 10000, 1000))


WEEK_MS = 7 * 24 * 3600 * 1000  # 604800000: over 2**29 ms, under 2**30 (a small int on a board)


def test_wifi_reassociates_at_once_after_a_week_up():
    # Boards (and compat on CPython) have 2**30 ms ticks: ticks_diff is only
    # meaningful within 2**29 ms (6.2 days). A retry time left over from
    # boot must not read as "in the future" a week later. The week passes
    # a minute per poll: 10080 polls, the ticks wrapping on the way.
    with_fake_network(False, 50, lambda network, clock: _reassociates_after(network, clock, WEEK_MS, 60000))


def _retries_after_a_week_unpolled(network, clock):
    logs = []
    wifi = make_wifi(network, clock, logs, timeout_ms=1000)
    wifi.poll(clock.now)
    clock.now = ticks_add(clock.now, 1000)
    wifi.poll(clock.now)
    assert wifi.failures == 1 and wifi.wlan.connect_calls == 1  # waiting 0.5..1 s to retry
    # No poll for a week (the loop stuck in something without a watchdog):
    # the retry is long overdue, not 5 days away as ticks_diff alone reads it.
    advance(clock, WEEK_MS, 1 << 28)
    assert wifi.poll(clock.now) is False
    assert wifi.wlan.connect_calls == 2
    # The same for the association deadline: over, not days away.
    advance(clock, WEEK_MS, 1 << 28)
    wifi.poll(clock.now)
    assert wifi.failures == 2
    assert "no association with 'house' within 1000 ms" in logs[-1], logs


def test_wifi_retries_at_once_after_a_week_without_a_poll():
    with_fake_network(True, 50, _retries_after_a_week_unpolled)


def test_wifi_refuses_a_deadline_ticks_cannot_measure():
    def make(timeout_ms):
        return lambda network, clock: make_wifi(network, clock, [], timeout_ms)

    for bad in (0, -1, 1 << 29, 1.5):
        try:
            with_fake_network(False, 50, make(bad))
        except ValueError as e:
            assert "connect_timeout_ms" in str(e) and repr(bad) in str(e), str(e)
            continue
        raise AssertionError("Wifi accepted connect_timeout_ms=%r" % (bad,))
    assert with_fake_network(False, 50, make((1 << 29) - 1)).connect_timeout_ms == (1 << 29) - 1


def _attempts(network, clock, wifi, span_ms, step_ms):
    """Polls every step_ms for span_ms; returns the offsets (ms from the
    first poll, measured across any wrap) of each wlan.connect call and of
    each attempt given up."""
    start = clock.now
    connects, failures = [], []
    calls, failed = wifi.wlan.connect_calls, wifi.failures
    for _ in range(span_ms // step_ms):
        wifi.poll(clock.now)
        if wifi.wlan.connect_calls != calls:
            calls = wifi.wlan.connect_calls
            connects.append(ticks_diff(clock.now, start))
        if wifi.failures != failed:
            failed = wifi.failures
            failures.append(ticks_diff(clock.now, start))
        clock.now = ticks_add(clock.now, step_ms)
    return connects, failures


def _check_attempts(connects, failures, timeout_ms, step_ms, context):
    # Each attempt is given up at its deadline (the polls land on it), and
    # the next starts after the backoff: Backoff(1000, 60000) waits half to
    # all of 1 s, 2 s, 4 s ... (no burst), and no later than a poll after (no stall).
    backoff_ms = 1000
    for k in range(len(failures)):
        assert failures[k] - connects[k] == timeout_ms, (context, connects, failures)
        if k + 1 < len(connects):
            waited = connects[k + 1] - failures[k]
            assert backoff_ms // 2 <= waited <= backoff_ms + step_ms, (context, k, connects, failures)
        backoff_ms = min(backoff_ms * 2, 60000)
    assert len(failures) in (len(connects), len(connects) - 1), (context, connects, failures)


def _across_the_wrap(network, clock):
    # 20 s of failing association from before_wrap_ms short of the wrap:
    # the wrap falls in the first deadline (500), the first backoff wait
    # (1500), the second attempt (2700) and the second wait (4000).
    # At 2**30 (a board, the 32-bit runtime, compat) and 2**62 (the Unix port).
    for before_wrap_ms in (500, 1500, 2700, 4000):
        network.down = True
        wifi = make_wifi(network, clock, [], timeout_ms=1000, start=ticks_add(0, -before_wrap_ms))
        connects, failures = _attempts(network, clock, wifi, 20000, 10)
        _check_attempts(connects, failures, 1000, 10, before_wrap_ms)
        # Attempts start by 1.5, 3.5, 6.5 and 11.5 s at the earliest, 2, 5, 10 and 19 s at the latest.
        assert len(connects) in (4, 5), (before_wrap_ms, connects)
        # The access point comes back: up within one backoff and one association.
        network.down = False
        up = False
        for _ in range(1700):
            clock.now = ticks_add(clock.now, 10)
            if wifi.poll(clock.now):
                up = True
                break
        assert up, (before_wrap_ms, connects, failures)
        assert wifi.reconnects == 1 and wifi.backoff.attempts == 0


def test_wifi_deadline_and_backoff_hold_across_the_tick_wrap():
    with_fake_network(True, 50, _across_the_wrap)


# ---- DNS from DHCP ---------------------------------------------------------


class AssociatedWifi:
    """A Wi-Fi that is up, with the DNS server DHCP gave it."""

    def __init__(self, dns_server):
        self.reconnects = 1
        self._dns_server = dns_server

    def poll(self, now):
        return True

    def is_up(self):
        return True

    def dns_server(self):
        return self._dns_server


def test_node_resolves_through_the_dns_server_dhcp_gave_the_wifi():
    try:
        import socket  # noqa: F401 - only asking whether the runtime has one
    except ImportError:
        support.skip("the node's resolver (lib/dns.py) needs `socket`, which this runtime has not")
    from node.node import Node

    node = Node(config.load(board(WIFI={"ssid": "house"})), wifi=AssociatedWifi("192.0.2.53"), log=lambda line: None)
    assert node.client.resolver is node.resolver
    node.step()
    assert node.resolver.server == "192.0.2.53"
    # A board's own DNS setting wins over DHCP's.
    node = Node(
        config.load(board(WIFI={"ssid": "house"}, DNS="192.0.2.1:5353")),
        wifi=AssociatedWifi("192.0.2.53"),
        log=lambda line: None,
    )
    node.step()
    assert (node.resolver.server, node.resolver.port) == ("192.0.2.1", 5353)


def test_node_without_wifi_or_dns_uses_getaddrinfo():
    from node.node import Node

    node = Node(config.load(board()), log=lambda line: None)
    assert node.resolver is None and node.client.resolver is None
