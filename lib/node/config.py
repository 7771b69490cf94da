# A board file (boards/<name>.py) is plain data: module-level names in
# capitals. This checks it once at start-up and fills in defaults, so a
# mistake fails at boot with the key and the value, not hours later.

from compat import getenv
from sensors import DRIVERS

_TOPIC_FORBIDDEN = ("/", "+", "#", "\x00")

# The longest wait a setting may ask for: a board's ticks_add refuses an
# interval of 2**29 ms (6.2 days) or more, and ticks_diff cannot measure one
# (DESIGN.md, "Time is ticks"). Every setting in seconds that the node turns
# into a wait in ms is checked by _seconds against it.
_MAX_WAIT_S = ((1 << 29) - 1) // 1000  # 536870 s

# key: (default, check). A default of _REQUIRED means the board must set it.
_REQUIRED = object()


def _text(key, value):
    if not isinstance(value, str) or not value:
        raise ValueError("board %s must be a non-empty string, got %r" % (key, value))
    for c in _TOPIC_FORBIDDEN:
        if c in value:
            raise ValueError("board %s must not contain %r (it is a topic level), got %r" % (key, c, value))


def _whole(key, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError("board %s must be a whole number from %d to %d, got %r" % (key, low, high, value))


def _seconds(key, value, low, high):
    """A wait in whole seconds from low to high (high at most _MAX_WAIT_S),
    which the node times with ticks."""
    if isinstance(value, int) and value > _MAX_WAIT_S:
        raise ValueError(
            "board %s must be at most %d s (a board's ticks_add refuses 2**29 ms, 6.2 days), got %r"
            % (key, _MAX_WAIT_S, value)
        )
    _whole(key, value, low, high if high < _MAX_WAIT_S else _MAX_WAIT_S)


def _qos(key, value):
    if not isinstance(value, int) or isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError("board %s must be 0, 1 or 2, got %r" % (key, value))


def _flag(key, value):
    if not isinstance(value, bool):
        raise ValueError("board %s must be True or False, got %r" % (key, value))


def load(board, secrets=None):
    """A dict of the board's settings, checked, with defaults and secrets
    merged in, and MQTT_HOST / MQTT_PORT from the environment (where there
    is one) taking precedence over the board's broker."""
    c = {}

    def get(key, default=_REQUIRED):
        value = getattr(board, key, default)
        if value is _REQUIRED:
            raise ValueError("board file is missing %s" % key)
        c[key] = value
        return value

    _text("PREFIX", get("PREFIX", "house"))
    _text("ROOM", get("ROOM"))
    _text("NODE", get("NODE"))
    _whole("BUFFER", get("BUFFER", 64), 1, 100000)
    _seconds("DIAGNOSTICS_S", get("DIAGNOSTICS_S", 300), 0, 86400)
    _whole("WATCHDOG_MS", get("WATCHDOG_MS", 0), 0, 3600000)  # an hour: far below _MAX_WAIT_S
    # Up to 6.2 days, not a week: one deep sleep is one wait (see _MAX_WAIT_S).
    _seconds("DEEP_SLEEP_S", get("DEEP_SLEEP_S", 0), 0, _MAX_WAIT_S)
    _whole("INFLIGHT", get("INFLIGHT", 16), 1, 1024)
    # The largest message held for QoS 1 resend: a Home Assistant config is ~400 B.
    _whole("MAX_PACKET", get("MAX_PACKET", 512), 128, 65536)
    _flag("DISCOVERY", get("DISCOVERY", True))
    payload = get("PAYLOAD", "plain")
    if payload not in ("plain", "json"):
        raise ValueError("board PAYLOAD must be 'plain' or 'json', got %r" % (payload,))
    safe = get("SAFE_MODE_PIN", None)
    if safe is not None and safe != "bootsel":
        _whole("SAFE_MODE_PIN", safe, 0, 63)  # None, a GPIO number, or "bootsel" (the Pico's button)
    c["STORE"] = _store(get("STORE", None))
    c["BROKER"] = _broker(get("BROKER"), secrets)
    c["WIFI"] = _wifi(get("WIFI", None), secrets)
    # DNS None: the server DHCP gave the Wi-Fi, or the host's resolver on the Unix port.
    c["DNS"] = _endpoint("DNS", get("DNS", None), 53)
    if c["DNS"] is not None and not _is_ipv4(c["DNS"][0]):
        raise ValueError("board DNS must be an IPv4 address (it cannot look itself up), got %r" % (c["DNS"][0],))
    # NTP None: trust the clock as it is (the host's on the Unix port).
    c["NTP"] = _endpoint("NTP", get("NTP", None), 123)
    buses = {}
    for kind in ("I2C", "ONEWIRE"):
        value = get(kind, {})
        if not isinstance(value, dict):
            raise ValueError("board %s must be a dict of bus name -> settings, got %r" % (kind, value))
        for name in value:
            buses[name] = (kind, value[name])
    c["BUSES"] = buses
    sensors = get("SENSORS")
    if not isinstance(sensors, (list, tuple)) or not sensors:
        raise ValueError("board SENSORS must be a non-empty list, got %r" % (sensors,))
    c["SENSORS"] = [_sensor(i, s, buses) for i, s in enumerate(sensors)]
    return c


def _store(store):
    """STORE: None (readings wait in RAM only) or a dict for node.store.FlashStore."""
    if store is None:
        return None
    if not isinstance(store, dict) or not isinstance(store.get("path"), str):
        raise ValueError("board STORE must be None or a dict with a 'path' string, got %r" % (store,))
    s = {
        "path": store["path"],
        "capacity": store.get("capacity", 2048),
        "policy": store.get("policy", "all"),
        "flush_every": store.get("flush_every", 32),
        "flush_s": store.get("flush_s", 120),
    }
    if s["policy"] not in ("all", "latest"):
        raise ValueError("board STORE policy must be 'all' or 'latest', got %r" % (s["policy"],))
    _whole("STORE capacity", s["capacity"], 16, 1000000)
    _whole("STORE flush_every", s["flush_every"], 1, 256)
    _seconds("STORE flush_s", s["flush_s"], 1, 86400)
    return s


def _broker(broker, secrets):
    if not isinstance(broker, dict):
        raise ValueError("board BROKER must be a dict, got %r" % (broker,))
    b = {
        "host": broker.get("host"),
        "port": broker.get("port", 8883 if broker.get("tls") else 1883),
        "tls": broker.get("tls", False),
        "ca": broker.get("ca", None),
        # A client certificate and its key, for a broker that requires one.
        "cert": broker.get("cert", None),
        "key": broker.get("key", None),
        "keepalive_s": broker.get("keepalive_s", 30),
        "username": broker.get("username", None),
        "password": getattr(secrets, "MQTT_PASSWORD", None) if secrets else None,
        "clean_session": broker.get("clean_session", False),
    }
    host, port = getenv("MQTT_HOST"), getenv("MQTT_PORT")
    if host:
        b["host"] = host
    if port:
        try:
            b["port"] = int(port)
        except ValueError:
            raise ValueError("environment MQTT_PORT must be a port number, got %r" % (port,))
    if not isinstance(b["host"], str) or not b["host"]:
        raise ValueError("board BROKER host must be a host name or address, got %r" % (b["host"],))
    _whole("BROKER port", b["port"], 1, 65535)
    _seconds("BROKER keepalive_s", b["keepalive_s"], 0, 65535)
    _flag("BROKER tls", b["tls"])
    _flag("BROKER clean_session", b["clean_session"])
    for key in ("ca", "cert", "key"):
        path = b[key]
        if path is None:
            continue
        if not isinstance(path, str) or not path.startswith("/"):
            # From /: `make deploy` copies the file to that path.
            raise ValueError(
                "board BROKER %s must be None or a file's path from /, like '/%s.pem', got %r" % (key, key, path)
            )
        if not b["tls"]:
            raise ValueError("board BROKER %s is set but tls is not True" % key)
    if (b["cert"] is None) != (b["key"] is None):
        raise ValueError("board BROKER cert and key go together: set both or neither")
    return b


def _endpoint(key, value, default_port):
    """None, "host" or "host:port" -> None or (host, port)."""
    if value is None:
        return None
    parts = value.split(":") if isinstance(value, str) else ()
    if len(parts) not in (1, 2) or not parts[0]:  # len checked first  # pyright: ignore[reportGeneralTypeIssues]
        raise ValueError("board %s must be None, 'host' or 'host:port', got %r" % (key, value))
    port = default_port
    if len(parts) == 2:
        try:
            port = int(parts[1])
        except ValueError:
            port = 0
        _whole(key + " port", port, 1, 65535)
    return parts[0], port  # len checked above  # pyright: ignore[reportGeneralTypeIssues]


def _is_ipv4(text):
    from ipv4 import is_ipv4  # only boards that name a DNS server load it

    return is_ipv4(text)


def _wifi(wifi, secrets):
    if wifi is None:
        return None
    if not isinstance(wifi, dict) or not isinstance(wifi.get("ssid"), str):
        raise ValueError("board WIFI must be None or a dict with an 'ssid' string, got %r" % (wifi,))
    w = {
        "ssid": wifi["ssid"],
        "password": getattr(secrets, "WIFI_PASSWORD", None) if secrets else None,
        "connect_timeout_s": wifi.get("connect_timeout_s", 20),
    }
    _seconds("WIFI connect_timeout_s", w["connect_timeout_s"], 1, 600)
    return w


def _sensor(index, sensor, buses):
    key = "SENSORS[%d]" % index
    if not isinstance(sensor, dict) or not isinstance(sensor.get("driver"), str):
        raise ValueError("board %s must be a dict with a 'driver' name, got %r" % (key, sensor))
    s = {
        "driver": sensor["driver"],
        "bus": sensor.get("bus", None),
        "pin": sensor.get("pin", None),
        "params": sensor.get("params", {}),
        "prefix": sensor.get("prefix", ""),
        "period_s": sensor.get("period_s", 60),
        "qos": sensor.get("qos", 1),
    }
    if s["driver"] not in DRIVERS:
        raise ValueError("board %s driver %r is unknown: known are %s" % (key, s["driver"], ", ".join(sorted(DRIVERS))))
    _seconds(key + " period_s", s["period_s"], 1, 86400)
    _qos(key + " qos", s["qos"])
    if s["bus"] is not None and s["bus"] not in buses:
        raise ValueError("board %s bus %r is not in I2C or ONEWIRE" % (key, s["bus"]))
    if not isinstance(s["params"], dict):
        raise ValueError("board %s params must be a dict, got %r" % (key, s["params"]))
    if s["prefix"]:
        _text(key + " prefix", s["prefix"])
    return s
