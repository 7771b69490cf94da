# The board-file checks (node.config) and the resolver the settings give
# the node. Runs on CPython, the Unix port and the 32-bit runtime (a board's
# 2**30 ms tick period: its ticks_add refuses 2**29 ms or more).
import os

import support
from compat import getenv, ticks_add, ticks_diff
from node import config

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
    ("NODE with '.'", board(NODE="hall.node"), ("NODE", "letters, digits", "'hall.node'")),
    ("NODE with a space", board(NODE="hall node"), ("NODE", "'hall node'")),
    ("NODE with a tab", board(NODE="hall\tnode"), ("NODE", "control characters")),
    ("ROOM with a newline", board(ROOM="hall\n"), ("ROOM", "control characters")),
    ("PREFIX from $", board(PREFIX="$house"), ("PREFIX", "'$house'")),
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


def skip_without_sockets():
    try:
        import socket  # noqa: F401 - only asking whether the runtime has one
    except ImportError:
        support.skip("the node's client and resolver need `socket`, which this runtime has not")


def test_node_resolves_through_the_dns_server_dhcp_gave_the_wifi():
    skip_without_sockets()
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
    skip_without_sockets()
    from node.node import Node

    node = Node(config.load(board()), log=lambda line: None)
    assert node.resolver is None and node.client.resolver is None


def test_node_refuses_a_max_packet_too_small_for_its_longest_reading():
    # A long room name: a short value would go, a long one (JSON with its
    # time) would not, and a replay of stored readings would stop there.
    skip_without_sockets()
    from node.node import Node

    room = "r" * 100
    try:
        Node(config.load(board(ROOM=room, MAX_PACKET=128)), log=lambda line: None)
    except ValueError as e:
        assert "MAX_PACKET (128)" in str(e) and room in str(e) and "needs 1" in str(e), str(e)
    else:
        raise AssertionError("a MAX_PACKET too small for a reading was taken")
    Node(config.load(board(ROOM=room, MAX_PACKET=256)), log=lambda line: None)
