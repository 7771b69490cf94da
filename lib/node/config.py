# A board file (boards/<name>.py) is plain data: module-level names in
# capitals. This checks it once at start-up and fills in defaults, so a
# mistake fails at boot with the key and the value, not hours later.

from compat import getenv
from sensors import DRIVERS, driver_class

_TOPIC_FORBIDDEN = ("/", "+", "#", "\x00")

# The longest wait a setting may ask for: a board's ticks_add refuses an
# interval of 2**29 ms (6.2 days) or more, and ticks_diff cannot measure one
# (DESIGN.md, "Time is ticks"). Every setting in seconds that the node turns
# into a wait in ms is checked by _seconds against it.
_MAX_WAIT_S = ((1 << 29) - 1) // 1000  # 536870 s

# key: (default, check). A default of _REQUIRED means the board must set it.
_REQUIRED = object()

# Every setting a board file may have, at the top and in each dict: a
# misspelt one ("BUFER", "perod_s") would otherwise be ignored, silently.
# MODEL names the hardware (Home Assistant's device model); ARCH is
# tools/deploy.py's (the mpy-cross architecture).
_BOARD_KEYS = (
    "PREFIX", "ROOM", "NODE", "MODEL", "ARCH", "BUFFER", "DIAGNOSTICS_S", "WATCHDOG_MS", "DEEP_SLEEP_S",
    "INFLIGHT", "MAX_PACKET", "DISCOVERY", "PAYLOAD", "SAFE_MODE_PIN", "STORE", "BROKER", "WIFI", "DNS",
    "NTP", "I2C", "ONEWIRE", "SENSORS",
)  # fmt: skip
_BROKER_KEYS = ("host", "port", "tls", "ca", "cert", "key", "keepalive_s", "username", "clean_session")
_WIFI_KEYS = ("ssid", "connect_timeout_s")
_STORE_KEYS = ("path", "capacity", "policy", "flush_every", "flush_s")
_SENSOR_KEYS = ("driver", "bus", "pin", "params", "prefix", "period_s", "qos")
_BUS_KEYS = {"I2C": ("id", "scl", "sda", "freq"), "ONEWIRE": ("pin",)}


def _closest(name, known):
    """The known name fewest edits away: a letter added, dropped, changed,
    or two next to each other swapped ("sad" is one swap from "sda")."""
    best, best_distance = None, 1 << 30
    for candidate in known:
        distance = _edits(name, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def _edits(a, b):
    # Optimal string alignment distance, row by row.
    before, previous = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if before is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[len(b)]


def _known_keys(where, names, known):
    """ValueError for the first of names that is not in known, naming the
    closest known one."""
    for name in names:
        if name in known:
            continue
        if not known:
            raise ValueError("board %s: unknown %r (it takes none)" % (where, name))
        raise ValueError(
            "board %s: unknown %r (did you mean %r? known: %s)" % (where, name, _closest(name, known), ", ".join(known))
        )


def _settings_of(board):
    # A board file's settings are its names in capitals; its imports and
    # helpers (lower case, or _private) are not.
    return [name for name in dir(board) if name[:1].isupper() and name.upper() == name]


def _text(key, value):
    if not isinstance(value, str) or not value:
        raise ValueError("board %s must be a non-empty string, got %r" % (key, value))
    for c in _TOPIC_FORBIDDEN:
        if c in value:
            raise ValueError("board %s must not contain %r (it is a topic level), got %r" % (key, c, value))
    for c in value:
        # 3.1.1 section 1.5.3: a broker may close the connection over a
        # control character in a topic (mosquitto does), at every reconnect.
        if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F:
            raise ValueError("board %s must not contain control characters, got %r" % (key, value))


def _node_name(value):
    # The client id, the user name the house ACL matches, and Home
    # Assistant's ids, which keep only these characters: 'hall.node' and
    # 'hall_node' would be one device there, and the ACL would refuse its
    # discovery configs.
    _text("NODE", value)
    for c in value:
        if not (c.isalpha() or c.isdigit() or c in "-_") or ord(c) > 0x7E:
            raise ValueError("board NODE may hold only letters, digits, '-' and '_', got %r" % (value,))


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
    _known_keys("file", _settings_of(board), _BOARD_KEYS)

    def get(key, default=_REQUIRED):
        value = getattr(board, key, default)
        if value is _REQUIRED:
            raise ValueError("board file is missing %s" % key)
        c[key] = value
        return value

    _text("PREFIX", get("PREFIX", "house"))
    if c["PREFIX"][0] == "$":
        # 3.1.1 section 4.7.2: the broker's own topics ($SYS); `#` does not match them.
        raise ValueError("board PREFIX must not start with '$', got %r" % (c["PREFIX"],))
    _text("ROOM", get("ROOM"))
    _node_name(get("NODE"))
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
    # Over-the-air updates (lib/ota) are on where the secrets hold a key; its
    # form is checked where it is used (ota.upkeep).
    c["OTA"] = getattr(secrets, "OTA_KEY", None) is not None if secrets else False
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
            settings = value[name]
            if not isinstance(settings, dict):
                raise ValueError("board %s %r must be a dict of settings, got %r" % (kind, name, settings))
            _known_keys("%s %r" % (kind, name), settings, _BUS_KEYS[kind])
            buses[name] = (kind, settings)
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
    _known_keys("STORE", store, _STORE_KEYS)
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
    _known_keys("BROKER", broker, _BROKER_KEYS)
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
    if b["password"] is not None and b["username"] is None:
        # 3.1.1 section 3.1.2.9: the password flag needs the user name flag.
        raise ValueError(
            "secrets MQTT_PASSWORD is set but board BROKER has no username: MQTT 3.1.1 sends a password only "
            "with a user name; add BROKER 'username' or set MQTT_PASSWORD = None"
        )
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
    _known_keys("WIFI", wifi, _WIFI_KEYS)
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
    _known_keys(key, sensor, _SENSOR_KEYS)
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
    # The driver's own parameters (its PARAMS): a wrong name would otherwise
    # fail in the node's loop, again and again, as a TypeError.
    _known_keys("%s params of %s" % (key, s["driver"]), s["params"], driver_class(s["driver"]).PARAMS)
    if s["prefix"]:
        _text(key + " prefix", s["prefix"])
    return s
